"""What apps above crm contribute to a contact's record: a registry (docs/architecture.md).

crm knows nothing of portfolios: the client record (``selectors.client_record``) and the contact's
timeline ask every registered source. ``portfolios`` registers its figures (value, TWR, MWR per
portfolio) and its transactions in its ``AppConfig.ready``. A contact merge sends
``contact_merging`` inside the merge's transaction so that apps holding rows of the contact move
them to the survivor in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.dispatch import Signal

#: Sent by ``services.contact_merge`` inside its transaction with ``loser`` and ``survivor``;
#: a receiver moves its rows and returns how many it moved (summed under ``moved_by_app``).
contact_merging = Signal()


#: The timeline's filter chips, in order: what each shows. A source registers under one of them.
TIMELINE_CATEGORIES: dict[str, str] = {
    "activities": "Activities",
    "transactions": "Transactions",
    "documents": "Documents",
    "fees": "Fees",
}


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # activity kind, "stage", "transaction", "document", ...
    title: str
    detail: str = ""
    url: str = ""
    category: str = ""  # a key of TIMELINE_CATEGORIES; set from the source's registration when empty
    amount: str = ""  # a money figure to show beside the title (income, fees, taxes, trades)


@dataclass
class PortfolioFigures:
    """One holding account of a client as the record shows it (``portfolio`` has ``pk`` and ``name``)."""

    portfolio: Any
    value: Decimal | None = None
    currency: str = ""
    twr: Decimal | None = None
    mwr: Decimal | None = None
    error: str = ""
    ytd: Decimal | None = None  # year-to-date TWR (fraction)
    fees_ytd: Decimal | None = None  # fees charged to the portfolio this year, in its base currency
    history: list[tuple[dt.date, Decimal]] = field(default_factory=list)  # daily value, the last 12 months


FiguresSource = Callable[..., list[PortfolioFigures]]  # (*, user, contact, today)
TimelineSource = Callable[..., list[TimelineItem]]  # (*, user, contact, limit)

_figures_sources: list[FiguresSource] = []
_timeline_sources: list[tuple[TimelineSource, str]] = []


def register_client_record_source(
    *,
    figures: FiguresSource | None = None,
    timeline: TimelineSource | None = None,
    category: str = "activities",
):
    """Add a source of portfolio figures and/or timeline items (idempotent: a source is kept once);
    ``category`` is the timeline chip its items fall under (``TIMELINE_CATEGORIES``)."""
    if category not in TIMELINE_CATEGORIES:
        raise ValueError(f"unknown timeline category {category!r}")
    if figures is not None and figures not in _figures_sources:
        _figures_sources.append(figures)
    if timeline is not None and all(timeline is not s for s, _c in _timeline_sources):
        _timeline_sources.append((timeline, category))


def figures_for(*, user, contact, today: dt.date) -> list[PortfolioFigures]:
    return [f for source in _figures_sources for f in source(user=user, contact=contact, today=today)]


def timeline_items_for(*, user, contact, limit: int, categories: Collection[str] | None = None) -> list[TimelineItem]:
    """Items of every registered source (of ``categories`` only, when given: the others are not
    asked, so a filtered timeline costs only its own queries)."""
    return [
        i if i.category else replace(i, category=category)
        for source, category in _timeline_sources
        if categories is None or category in categories
        for i in source(user=user, contact=contact, limit=limit)
    ]


@dataclass
class ClientListFigures:
    """What the clients list shows of one contact's money: AUM per base currency and the YTD
    return (a fraction, value-weighted over their portfolios; None when there is none)."""

    aum: dict[str, Decimal]
    ytd: Decimal | None = None


ListFiguresSource = Callable[..., dict[int, ClientListFigures]]  # (*, user, contacts, today)

_list_sources: list[ListFiguresSource] = []


def register_client_list_source(source: ListFiguresSource) -> None:
    """Add a source of the clients list's money columns (idempotent)."""
    if source not in _list_sources:
        _list_sources.append(source)


def client_list_figures_for(*, user, contacts, today: dt.date) -> dict[int, ClientListFigures]:
    """The money columns of a page of contacts, from every registered source (a fixed number of
    queries per source for the whole page: sources read stored valuations, never a ledger per row)."""
    out: dict[int, ClientListFigures] = {}
    for source in _list_sources:
        for pk, figures in source(user=user, contacts=contacts, today=today).items():
            mine = out.setdefault(pk, ClientListFigures(aum={}))
            for currency, value in figures.aum.items():
                mine.aum[currency] = mine.aum.get(currency, Decimal(0)) + value
            if mine.ytd is None:
                mine.ytd = figures.ytd
    return out


# --- global search ----------------------------------------------------------------------------------

#: ``(*, user, q, limit) -> list[crm.selectors.SearchHit]``: hits of one kind of record above crm
#: (portfolios, instruments) for the search page; each source scopes them to ``user`` itself.
SearchSource = Callable[..., list[Any]]

_search_sources: list[SearchSource] = []


def register_search_source(source: SearchSource) -> None:
    """Add a source of the global search page's hits (idempotent)."""
    if source not in _search_sources:
        _search_sources.append(source)


def search_hits_for(*, user, q: str, limit: int) -> list[Any]:
    """Every registered source's hits, in registration order, at most ``limit`` from each."""
    return [hit for source in _search_sources for hit in source(user=user, q=q, limit=limit)]
