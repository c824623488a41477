"""The ``data`` of billing's business events, sent to the firm the invoice or subscription is of."""

from __future__ import annotations


def invoice_data(invoice) -> dict:
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "status": invoice.status,
        "total": str(invoice.total),
        "currency": invoice.currency,
        "period_start": invoice.period_start.date().isoformat(),
        "period_end": invoice.period_end.date().isoformat(),
    }


def subscription_data(sub) -> dict:
    return {
        "plan": sub.plan.code,
        "interval": sub.interval,
        "status": sub.status,
        "cancel_at_period_end": sub.cancel_at_period_end,
    }
