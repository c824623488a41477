"""What portfolios add to a client's record in crm (``crm.record_sources``, a registry): each
portfolio's value, since-inception TWR and MWR, the client's transactions on the timeline, and
the move of portfolios when two contacts are merged. Registered in ``PortfoliosConfig.ready``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm.record_sources import ClientListFigures, PortfolioFigures, TimelineItem

from . import selectors
from .access import portfolios_visible_to
from .models import Portfolio, Transaction


def client_portfolio_figures(*, user, contact, today: dt.date) -> list[PortfolioFigures]:
    """The client's live portfolios that ``user`` may see, with their figures: one batch for every
    portfolio (three queries over the stored valuations), not one ledger replay per portfolio."""
    portfolios = list(portfolios_visible_to(user).filter(client=contact, archived=False))
    since = selectors.portfolio_since_inception(portfolios, today=today)
    figures = []
    for p in portfolios:
        one = since[p.pk]
        twr, mwr = one.twr, one.mwr
        figures.append(
            PortfolioFigures(
                p,
                value=one.value,
                currency=p.base_currency,
                twr=twr.value if twr else None,
                mwr=mwr.value if mwr else None,
                error=one.error,
            )
        )
    return figures


def client_transaction_items(*, user, contact, limit: int) -> list[TimelineItem]:
    """The latest ``limit`` transactions of the client's portfolios that ``user`` may see. One query."""
    txns = (
        Transaction.objects.filter(portfolio__in=portfolios_visible_to(user).filter(client=contact))
        .select_related("portfolio", "instrument")
        .order_by("-trade_date", "-id")[:limit]
    )
    items = []
    for t in txns:
        what = t.get_kind_display()
        if t.instrument is not None:
            what += f" {t.quantity.normalize():f} {t.instrument.symbol}"
        elif t.amount is not None:
            what += f" {t.amount.quantize(Decimal('0.01')):,} {t.currency}"
        at = dt.datetime.combine(t.trade_date, dt.time(0, 0), tzinfo=dt.UTC)
        items.append(TimelineItem(at, "transaction", f"{t.portfolio.name}: {what}", t.note))
    return items


def portfolios_follow_merged_contact(sender, *, loser, survivor, **kwargs) -> dict[str, int]:
    """Receiver of ``crm.record_sources.contact_merging``: the loser's portfolios become the
    survivor's, inside the merge's transaction."""
    return {"portfolios": Portfolio.objects.filter(client=loser).update(client=survivor)}


def client_list_figures(*, user, contacts, today: dt.date) -> dict[int, ClientListFigures]:
    """AUM per base currency and the value-weighted YTD return of each contact on a page of the
    clients list, over their live portfolios that ``user`` may see. One query for the portfolios,
    then ``portfolio_summaries`` (stored valuations, a fixed number of queries for the page)."""
    ids = [c.pk for c in contacts]
    if not ids:
        return {}
    portfolios = list(portfolios_visible_to(user).filter(client_id__in=ids, archived=False))
    summaries = selectors.portfolio_summaries(portfolios, today=today)
    out: dict[int, ClientListFigures] = {}
    weights: dict[int, tuple[Decimal, Decimal]] = {}
    for p in portfolios:
        if p.client_id is None:  # filtered on the page's contacts: never None here
            continue
        summary = summaries.get(p.pk)
        row = out.setdefault(p.client_id, ClientListFigures(aum={}))
        if summary is None or summary.value is None:
            continue
        row.aum[p.base_currency] = row.aum.get(p.base_currency, Decimal(0)) + summary.value
        if summary.ytd is not None and summary.ytd.value is not None and summary.value > 0:
            weighted, total = weights.get(p.client_id, (Decimal(0), Decimal(0)))
            weights[p.client_id] = (weighted + summary.ytd.value * summary.value, total + summary.value)
    for pk, (weighted, total) in weights.items():
        out[pk].ytd = weighted / total if total else None
    return out
