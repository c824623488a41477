"""The firm's ledger rules: what a write that overdraws cash does, and the reconciliation tolerance."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from tenants.models import Tenant
from tenants.services import audit_record

from ..models import LedgerSettings, NegativeCash


def ledger_settings_update(
    *, negative_cash: str | None = None, reconciliation_tolerance: Decimal | None = None, actor: str = ""
) -> LedgerSettings:
    """Change the firm's ledger settings (fields left ``None`` keep their value). Atomic and audited
    (``portfolios.ledger_settings_changed`` with the old and new values). ``ValidationError``
    naming the field for a value that is not allowed. The rule applies to writes from now on;
    balances already negative stay as they are (shown in red with the reason)."""
    if negative_cash is not None and negative_cash not in NegativeCash.values:
        raise ValidationError({"negative_cash": f"Choose one of: {', '.join(NegativeCash.values)}."})
    if reconciliation_tolerance is not None and (
        not reconciliation_tolerance.is_finite() or reconciliation_tolerance < 0
    ):
        raise ValidationError({"reconciliation_tolerance": "Give a number of units of zero or more."})
    with transaction.atomic():
        row = LedgerSettings.objects.select_for_update().first() or LedgerSettings()
        before = {"negative_cash": row.negative_cash, "reconciliation_tolerance": str(row.reconciliation_tolerance)}
        if negative_cash is not None:
            row.negative_cash = negative_cash
        if reconciliation_tolerance is not None:
            row.reconciliation_tolerance = reconciliation_tolerance
        row.full_clean(exclude=["singleton"])
        row.save()
        after = {"negative_cash": row.negative_cash, "reconciliation_tolerance": str(row.reconciliation_tolerance)}
        if after != before:
            tenant = getattr(connection, "tenant", None)
            audit_record(
                action="portfolios.ledger_settings_changed",
                actor=actor or "system",
                tenant=tenant if isinstance(tenant, Tenant) else None,
                target="ledger settings",
                details={"before": before, "after": after},
            )
    return row
