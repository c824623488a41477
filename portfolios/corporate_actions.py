"""Corporate actions from the feed as pending ledger entries (decision 0973).

A split or dividend the feed stored (``market.CorporateAction``) is *pending* for each portfolio
the caller may read that held the instrument the day before the ex-date and has not decided on it.
Accepting books the ledger row (a ``split`` of the ratio, or a ``dividend`` of units held x amount
per unit) through the ledger service; dismissing records the decision. Nothing is booked silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from portfolios.market.models import CorporateAction

from . import analytics, services
from .access import portfolio_for_user, portfolios_visible_to
from .ledger import ledger_of, ledgers_of
from .models import CorporateActionDecision, Kind, Lot, Portfolio


class ActionNotPending(ValidationError):
    """The corporate action exists but is not pending for the portfolio (decided already, or the
    portfolio did not hold the instrument before the ex-date): a conflict with the stored state,
    409 in the API naming ``action``."""


@dataclass(frozen=True)
class Pending:
    action: CorporateAction
    portfolio: Portfolio
    quantity: Decimal  # units held at the close before the ex-date

    def proposed(self) -> dict:
        if self.action.kind == CorporateAction.Kind.SPLIT:
            return {"kind": Kind.SPLIT, "trade_date": self.action.date, "quantity": self.action.value}
        return {
            "kind": Kind.DIVIDEND,
            "trade_date": self.action.date,
            "amount": (self.quantity * self.action.value).quantize(Decimal("0.000001")),
        }


def _held_before(portfolio: Portfolio, instrument_id: int, day: date, ledger=None) -> Decimal:
    """Units of ``instrument_id`` held at the close before ``day`` (``ledger``: the portfolio's
    ``ledger_of`` rows when the caller read them already)."""
    book = analytics.build_lots(
        ledger if ledger is not None else ledger_of(portfolio=portfolio),
        method=portfolio.lot_method,
        until=day - timedelta(days=1),
    )
    return sum((lot.quantity for lot in book.open_lots if lot.instrument_id == instrument_id), Decimal(0))


def pending_for(user, *, since: date | None = None) -> list[Pending]:
    """Pending corporate actions of the portfolios ``user`` may read (oldest first)."""
    visible = portfolios_visible_to(user, include_archived=False)
    candidates = Lot.objects.filter(portfolio__in=visible).values_list("portfolio_id", "instrument_id", "acquired_on")
    first_held: dict[tuple[int, int], date] = {}
    for pid, iid, acquired in candidates:
        key = (pid, iid)
        first_held[key] = min(acquired, first_held.get(key, acquired))
    if not first_held:
        return []
    actions = CorporateAction.objects.filter(instrument_id__in={iid for _, iid in first_held}).select_related(
        "instrument"
    )
    if since is not None:
        actions = actions.filter(date__gte=since)
    decided = set(CorporateActionDecision.objects.values_list("action_id", "portfolio_id"))
    portfolios = {p.pk: p for p in visible.filter(pk__in={pid for pid, _ in first_held})}
    ledgers = ledgers_of(portfolio_ids=portfolios)  # one query for every portfolio's ledger
    out = []
    for action in actions.order_by("date", "pk"):
        for (pid, iid), acquired in first_held.items():
            if iid != action.instrument_id or acquired >= action.date or (action.pk, pid) in decided:
                continue
            quantity = _held_before(portfolios[pid], iid, action.date, ledgers[pid])
            if quantity > 0:
                out.append(Pending(action, portfolios[pid], quantity))
    return out


def decide(*, user, action_id: int, portfolio_id: int, accept: bool) -> CorporateActionDecision:
    """Accept (book the proposed row) or dismiss one pending action for one portfolio. Atomic;
    ``ValidationError`` naming ``action`` for an action that does not exist, ``ActionNotPending``
    when it is not pending there (decided already, or not held)."""
    portfolio = portfolio_for_user(user, portfolio_id, write=True)
    if not CorporateAction.objects.filter(pk=action_id).exists():
        raise ValidationError({"action": "No corporate action has this id."})
    pending = [p for p in pending_for(user) if p.action.pk == action_id and p.portfolio.pk == portfolio.pk]
    if not pending:
        raise ActionNotPending({"action": "This corporate action is not pending for this portfolio."})
    item = pending[0]
    with transaction.atomic():
        txn = None
        if accept:
            txn = services.transaction_record(
                portfolio=portfolio,
                created_by=user,
                instrument=item.action.instrument,
                note=f"{item.action.get_kind_display()} from {item.action.source}",
                **item.proposed(),
            )
        return CorporateActionDecision.objects.create(
            action=item.action,
            portfolio=portfolio,
            decision=CorporateActionDecision.Decision.ACCEPTED
            if accept
            else CorporateActionDecision.Decision.DISMISSED,
            transaction=txn,
            decided_by=user if getattr(user, "pk", None) else None,
        )
