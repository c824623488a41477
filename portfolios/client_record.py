"""What portfolios add to a client's record in crm (``crm.record_sources``, a registry): each
portfolio's value, since-inception TWR and MWR, the client's transactions on the timeline, and
the move of portfolios when two contacts are merged. Registered in ``PortfoliosConfig.ready``."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from codex import formatting
from crm.record_sources import ClientListFigures, PortfolioFigures, TimelineItem
from tenants.links import firm_path

from . import selectors
from .access import portfolios_visible_to
from .models import Kind, Portfolio, Transaction, Valuation
from .models import PortfolioFigures as StoredFigures

HISTORY_DAYS = 365
INCOME_KINDS = frozenset({Kind.DIVIDEND, Kind.INTEREST, Kind.FEE, Kind.TAX})


def client_portfolio_figures(*, user, contact, today: dt.date) -> list[PortfolioFigures]:
    """The client's live portfolios that ``user`` may see, with their figures, all from the stored
    valuations in one batch for every portfolio, not one ledger replay per portfolio: value and
    since-inception TWR and MWR (``portfolio_since_inception``, three queries), YTD TWR (the
    summaries the lists and the dashboard show, cached per ledger), and one query over the last
    year's closes for the value history (the sparkline) and this year's fees."""
    portfolios = list(portfolios_visible_to(user).filter(client=contact, archived=False))
    since = selectors.portfolio_since_inception(portfolios, today=today)
    ytd = _stored_ytd(portfolios, today=today)
    year_start = dt.date(today.year, 1, 1)
    history: dict[int, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    fees: dict[int, Decimal] = defaultdict(Decimal)
    if portfolios:
        rows = (
            Valuation.objects.filter(
                portfolio_id__in=[p.pk for p in portfolios],
                date__gte=min(today - dt.timedelta(days=HISTORY_DAYS), year_start),
                date__lte=today,
            )
            .order_by("portfolio_id", "date")
            .values_list("portfolio_id", "date", "value", "fees")
        )
        for pid, day, value, fee in rows:
            if day >= today - dt.timedelta(days=HISTORY_DAYS):
                history[pid].append((day, value))
            if day >= year_start:
                fees[pid] += fee
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
                ytd=ytd.get(p.pk),
                fees_ytd=fees[p.pk] if p.pk in history or p.pk in fees else None,
                history=history[p.pk],
            )
        )
    return figures


def _stored_ytd(portfolios: list[Portfolio], *, today: dt.date) -> dict[int, Decimal | None]:
    """Year-to-date TWR (the figure shown) of each portfolio: the stored ``PortfolioFigures`` of
    those valued through ``today`` (one query; written with the valuations, decision 1000), the
    summaries (``portfolio_summaries``) only for the others, so a record whose store is current
    neither fingerprints the ledgers nor waits for a cache filled on first read (decision 1210)."""
    if not portfolios:
        return {}
    out: dict[int, Decimal | None] = dict(
        StoredFigures.objects.filter(portfolio_id__in=[p.pk for p in portfolios], as_of=today).values_list(
            "portfolio_id", "ytd"
        )
    )
    behind = [p for p in portfolios if p.pk not in out]
    for pk, summary in selectors.portfolio_summaries(behind, today=today).items():
        out[pk] = summary.ytd.value if summary.ytd else None
    return out


def _money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else formatting.money(amount, currency)


def client_transaction_items(*, user, contact, limit: int) -> list[TimelineItem]:
    """The latest ``limit`` transactions of the client's portfolios that ``user`` may see. Two
    queries (the portfolios' ids, then the rows), whatever the length of the ledgers.
    Income, fees and taxes show their amount (with the instrument they came from), trades their
    units, price and instrument name."""
    # Each portfolio's latest ``limit`` rows along its (portfolio, trade date, id) index, then the
    # latest of those: one IN over all the client's portfolios sorted every row of their ledgers
    # (5,000 for the big client) to keep ``limit`` (decision 1210).
    ids = list(portfolios_visible_to(user).filter(client=contact).values_list("pk", flat=True))
    if not ids:
        return []
    per_portfolio = [
        Transaction.objects.filter(portfolio_id=pk).order_by("-trade_date", "-id").values("pk")[:limit] for pk in ids
    ]
    latest = per_portfolio[0].union(*per_portfolio[1:], all=True) if len(per_portfolio) > 1 else per_portfolio[0]
    txns = (
        Transaction.objects.filter(pk__in=latest)
        .select_related("portfolio", "instrument")
        .order_by("-trade_date", "-id")[:limit]
    )
    items = []
    for t in txns:
        what = t.get_kind_display()
        amount = ""
        if t.kind in INCOME_KINDS or t.instrument is None:
            amount = _money(t.amount, t.currency)
            if t.instrument is not None:
                what += (
                    f" from {t.instrument.symbol} ({t.instrument.name})"
                    if t.instrument.name
                    else f" from {t.instrument.symbol}"
                )
        else:
            what += f" {formatting.quantity(t.quantity)} {t.instrument.symbol}"
            if t.instrument.name:
                what += f" ({t.instrument.name})"
            if t.price:
                what += f" at {formatting.price(t.price, t.currency)}"
                amount = _money(t.quantity * t.price, t.currency)
        at = dt.datetime.combine(t.trade_date, dt.time(0, 0), tzinfo=dt.UTC)
        items.append(
            TimelineItem(
                at,
                "transaction",
                f"{t.portfolio.name}: {what}",
                t.note,
                firm_path("portfolios:detail", args=[t.portfolio_id]),
                category="transactions",
                amount=amount,
            )
        )
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
