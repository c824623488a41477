"""The ``data`` of the fee business's events (catalogue: codex/outbox/catalogue.py)."""

from __future__ import annotations

from decimal import Decimal

from .models import MONEY

_CENTS = Decimal(1).scaleb(-MONEY["decimal_places"])


def fee_invoice_data(invoice) -> dict:
    """A client fee invoice or credit note as webhooks carry it; money as decimal strings."""
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "household_id": invoice.group_id,
        "client_id": invoice.client_id,
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "total": str(Decimal(invoice.total).quantize(_CENTS)),  # as stored, also before a reload
        "currency": invoice.currency,
        "collection": invoice.collection,
        "credit_of_id": invoice.credit_of_id,
    }
