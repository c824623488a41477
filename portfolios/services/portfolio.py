"""Portfolios: create (the plan's portfolio limit), update (base currency and lot method only while the
ledger is empty), delete."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from billing.entitlements import check_can_add
from portfolios.market.models import Instrument
from tenants.accounts.models import Role

from .. import analytics
from ..ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from ..models import (
    Portfolio,
)
from ..valuation_services import firm_valuations_move


def _check_currency(code: str, field: str, errors: dict) -> str:
    code = (code or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        errors[field] = "Enter a three-letter ISO currency code, e.g. USD."
    return code


def _check_portfolio_people(*, actor, advisor, client, errors: dict, creating: bool = True) -> None:
    if advisor is not None and advisor.role not in (Role.OWNER, Role.ADMIN, Role.ADVISOR):
        errors["advisor"] = "The advisor must be an owner, admin or advisor of the firm."
    elif advisor is not None and not advisor.is_active:
        errors["advisor"] = "This person's account is deactivated."
    if actor is not None and getattr(actor, "role", None) == Role.ADVISOR:
        # An advisor builds their own book: they advise it, and the client is theirs or shared.
        if creating and advisor is not None and advisor.pk != actor.pk:
            errors["advisor"] = "Advisors create portfolios they advise themselves."
        elif not creating and advisor is not None:
            errors["advisor"] = "Only owners and admins move a portfolio to another advisor."
        if client is not None and not (client.owner_id == actor.pk or client.shared_with.filter(pk=actor.pk).exists()):
            errors["client"] = "This client is not in your book."


def portfolio_create(
    *,
    tenant,
    actor,
    name: str,
    advisor,
    base_currency: str = "USD",
    client=None,
    benchmark: Instrument | None = None,
    lot_method: str = "fifo",
    shared_with=(),
) -> Portfolio:
    """Create a portfolio. Checks the plan's portfolio limit (``PlanLimitExceeded``) and raises
    ``ValidationError`` with field errors for a bad currency, advisor or client. Atomic."""
    errors: dict = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the portfolio a name."
    base_currency = _check_currency(base_currency, "base_currency", errors)
    if lot_method not in analytics.LOT_METHODS:
        errors["lot_method"] = f"Choose one of {', '.join(analytics.LOT_METHODS)}."
    _check_portfolio_people(actor=actor, advisor=advisor, client=client, errors=errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        check_can_add(tenant=tenant, resource="portfolios")
        portfolio = Portfolio.objects.create(
            name=name,
            advisor=advisor,
            client=client,
            base_currency=base_currency,
            benchmark=benchmark,
            lot_method=lot_method,
        )
        if shared_with:
            portfolio.shared_with.set(shared_with)
    return portfolio


class LedgerStateConflict(ValidationError):
    """A change the portfolio's ledger no longer allows (its base currency once it has rows): the
    request is well formed, the stored state refuses it (409 in the API, the field's error on pages)."""


def portfolio_update(*, portfolio: Portfolio, actor, **changes) -> Portfolio:
    """Change name, client, advisor, benchmark, sharing, lot method or the archived flag.

    The base currency and the lot method change how the whole ledger is valued, so they can only
    change while the ledger is empty (``LedgerStateConflict``, a ValidationError naming the field,
    otherwise: 409 in the API). Atomic."""
    allowed = {"name", "client", "advisor", "base_currency", "benchmark", "lot_method", "archived", "shared_with"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in unknown})
    errors: dict = {}
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            errors["name"] = "Give the portfolio a name."
    if "base_currency" in changes:
        changes["base_currency"] = _check_currency(changes["base_currency"], "base_currency", errors)
    if "lot_method" in changes and changes["lot_method"] not in analytics.LOT_METHODS:
        errors["lot_method"] = f"Choose one of {', '.join(analytics.LOT_METHODS)}."
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        has_ledger = portfolio.transactions.exists()
        state_errors: dict[str, str] = {
            f: "This can only change while the portfolio has no transactions."
            for f in ("base_currency", "lot_method")
            if f in changes and changes[f] != getattr(portfolio, f) and has_ledger and f not in errors
        }
        # Only what changes is checked: an advisor may edit a portfolio shared with them
        # without being its advisor, but not move it to another advisor (themselves included).
        _check_portfolio_people(
            actor=actor,
            advisor=changes["advisor"] if changes.get("advisor", portfolio.advisor) != portfolio.advisor else None,
            client=changes["client"] if changes.get("client", portfolio.client) != portfolio.client else None,
            errors=errors,
            creating=False,
        )
        if errors:
            raise ValidationError(errors | state_errors)
        if state_errors:
            raise LedgerStateConflict(state_errors)
        shared = changes.pop("shared_with", None)
        archiving = "archived" in changes and bool(changes["archived"]) != portfolio.archived
        for f, v in changes.items():
            setattr(portfolio, f, v)
        portfolio.save()
        if archiving:  # the firm's stored totals leave archived portfolios out
            firm_valuations_move(portfolio=portfolio, archived=portfolio.archived)
        if shared is not None:
            portfolio.shared_with.set(shared)
    return portfolio


def portfolio_delete(*, portfolio: Portfolio) -> None:
    """Delete an empty portfolio. One with a ledger is archived instead (``ValidationError``)."""
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        if portfolio.transactions.exists():
            raise ValidationError(
                {"portfolio": "This portfolio has transactions; archive it instead of deleting its history."}
            )
        try:
            portfolio.delete()
        except ProtectedError as exc:  # pragma: no cover - nothing protects an empty portfolio today
            raise ValidationError({"portfolio": "Other records still refer to this portfolio."}) from exc
