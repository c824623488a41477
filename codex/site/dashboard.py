"""The dashboard's reads: one function that asks each domain app's selectors for its panel.

Each panel is computed by the app that owns the data (portfolios.selectors, crm.access/selectors,
portfolios.alerts); this module only picks, orders and charts. A panel whose app is not installed
(ImportError while the app is being built) is None and the page says so; any other error is a bug
and propagates. Every panel costs a fixed number of queries whatever the size of the book, pinned by
tests/web/test_dashboard.py.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Sum
from django.utils import timezone

from codex.charts import hbar_chart
from crm.models import DealStatus
from crm.selectors import activities_latest_for, deal_list, tasks_due_for
from portfolios.access import portfolios_visible_to
from portfolios.alerts.selectors import events_visible_to
from portfolios.book import book_exposure, book_performance, book_totals
from portfolios.custodian import open_break_count

from .onboarding import Checklist, onboarding_checklist

ZERO = Decimal(0)
LIST_LENGTH = 6
CARD_CHART_WIDTH = 480  # the charts sit in half-width cards


@dataclass
class BookPanel:
    currency: str
    aum: Decimal
    day_change: Decimal | None
    day_change_pct: Decimal | None
    portfolio_count: int
    cash: Decimal
    sectors: list[Any]
    movers: list[Any]
    chart: str = ""
    # What the firm-wide figures leave out, said on the page (portfolios.book).
    missing_rates: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    as_of: date | None = None  # the day of the stored figures (before today: not valued today yet)


@dataclass
class PerformanceRow:
    portfolio: Any
    value: Decimal | None
    ytd: Decimal | None
    since_inception: Decimal | None


@dataclass
class PerformancePanel:
    ytd: Decimal | None
    since_inception: Decimal | None
    rows: list[PerformanceRow]
    chart: str = ""
    as_of: date | None = None  # the day of the stored figures
    behind: int = 0  # portfolios whose figures are of an earlier day
    missing_rates: list[str] = field(default_factory=list)


@dataclass
class TasksPanel:
    items: list[Any]
    count: int


@dataclass
class DealsPanel:
    deals: list[Any]
    count: int
    total: Decimal
    weighted: Decimal
    currency: str
    month: date


@dataclass
class Dashboard:
    today: date
    checklist: Checklist | None = None
    book: BookPanel | None = None
    performance: PerformancePanel | None = None
    tasks: TasksPanel | None = None
    deals: DealsPanel | None = None
    alerts: list[Any] | None = None
    activity: list[Any] | None = None
    open_breaks: int | None = None  # reconciliation breaks open in the caller's book (portfolios.custodian)
    missing: list[str] = field(default_factory=list)


# --- Panels -----------------------------------------------------------------------------------------


def book_panel(*, user, today: date) -> BookPanel | None:
    """AUM, cash and the day's change of the caller's book from the stored valuations (the
    firm's daily totals for a firm-wide role), and exposure by sector from the holdings summed
    per instrument (portfolios.book)."""
    totals = book_totals(user=user, on=today)
    exposure = book_exposure(user=user, on=today)
    sectors = exposure.by_sector[:8]
    chart = ""
    if sectors:
        chart = hbar_chart(
            [(s.label, s.value) for s in sectors],
            title=f"Assets by sector ({exposure.currency})",
            description="; ".join(f"{s.label}: {s.value:,.0f}" for s in sectors),
            width=CARD_CHART_WIDTH,
            currency=exposure.currency,
            table=False,  # the card's own table gives value and weight
        )
    return BookPanel(
        currency=totals.currency,
        aum=totals.value,
        day_change=totals.day_change,
        day_change_pct=totals.day_change_pct,
        portfolio_count=totals.portfolio_count,
        cash=totals.cash,
        sectors=sectors,
        movers=exposure.movers,
        chart=chart,
        missing_rates=sorted(set(totals.missing_rates) | set(exposure.missing_rates)),
        unpriced=list(exposure.unpriced),
        as_of=totals.on,
    )


def performance_panel(*, user, today: date) -> PerformancePanel | None:
    """Year-to-date and since-inception time-weighted returns of the book, value-weighted, and
    its largest portfolios, from each portfolio's stored figures (portfolios.book, decision 1000)."""
    book = book_performance(user=user, largest=LIST_LENGTH + 2)
    rows = [
        PerformanceRow(portfolio=f.portfolio, value=f.value, ytd=_pct(f.ytd), since_inception=_pct(f.since_inception))
        for f in book.largest
    ]
    chart = ""
    charted = [(r.portfolio.name, r.ytd) for r in rows if r.ytd is not None]
    if charted:
        chart = hbar_chart(
            charted,
            title="Year-to-date return of the largest portfolios (%)",
            description="; ".join(f"{name}: {ytd:.2f}%" for name, ytd in charted),
            percent=True,
            width=CARD_CHART_WIDTH,
            table=False,  # the card's table below lists the same portfolios with value and returns
        )
    return PerformancePanel(
        ytd=_pct(book.ytd),
        since_inception=_pct(book.since_inception),
        rows=rows,
        chart=chart,
        as_of=book.as_of,
        behind=book.behind,
        missing_rates=book.missing_rates,
    )


def _pct(fraction: Decimal | None) -> Decimal | None:
    """A stored return (a fraction, or None) as a percentage."""
    return None if fraction is None else fraction * 100


def tasks_panel(*, user, today: date) -> TasksPanel | None:
    """The caller's open tasks due today or overdue, oldest first (crm.selectors.tasks_due_for)."""
    due = tasks_due_for(user, due="due", today=today)
    items = list(due[: LIST_LENGTH + 1])
    count = len(items) if len(items) <= LIST_LENGTH else due.count()
    return TasksPanel(items=items[:LIST_LENGTH], count=count)


def deals_panel(*, user, today: date) -> DealsPanel | None:
    """Open deals of the caller's book expected to close this month, soonest first: the first
    few rows, and the month's count and amounts summed by PostgreSQL per currency (two queries
    whatever the size of the pipeline; the month's deals are not loaded one by one). The total
    and weighted amount are those of the currency of the soonest deal, as before."""
    first = today.replace(day=1)
    last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    month = deal_list(user=user, status=DealStatus.OPEN).filter(expected_close__gte=first, expected_close__lte=last)
    deals = list(month.select_related("contact", "stage").order_by("expected_close", "pk")[:LIST_LENGTH])
    if not deals:
        return DealsPanel(deals=[], count=0, total=ZERO, weighted=ZERO, currency="USD", month=first)
    currency = deals[0].currency
    per_currency = {
        row["currency"]: row
        for row in month.order_by()
        .values("currency")
        .annotate(
            n=Count("pk"),
            total=Sum("amount"),
            # amount x percentage summed exactly; divided by 100 here, as the rows were before
            weighted=Sum(F("amount") * F("probability"), output_field=DecimalField()),
        )
    }
    mine = per_currency[currency]
    return DealsPanel(
        deals=deals,
        count=sum(row["n"] for row in per_currency.values()),
        total=mine["total"] or ZERO,
        weighted=(mine["weighted"] or ZERO) / 100,
        currency=currency,
        month=first,
    )


def alerts_panel(*, user, today: date) -> list[Any] | None:
    """The latest alert firings the caller may see (portfolios.alerts.selectors.events_visible_to)."""
    return list(events_visible_to(user).order_by("-fired_at", "-pk")[:LIST_LENGTH])


def activity_panel(*, user, today: date) -> list[Any] | None:
    """The latest things that happened in the caller's book (notes, calls, meetings, e-mails)."""
    return activities_latest_for(user, limit=LIST_LENGTH)


def breaks_panel(*, user, today: date) -> int | None:
    """How many reconciliation breaks are open in the portfolios the caller may read."""
    return open_break_count(portfolios=portfolios_visible_to(user))


def dashboard_for(*, request, today: date | None = None) -> Dashboard:
    user = request.user
    today = today or timezone.localdate()
    board = Dashboard(today=today)
    checklist = onboarding_checklist(tenant=request.tenant)
    board.checklist = None if checklist.complete else checklist
    for name, builder in (
        ("book", book_panel),
        ("performance", performance_panel),
        ("tasks", tasks_panel),
        ("deals", deals_panel),
        ("alerts", alerts_panel),
        ("activity", activity_panel),
        ("open_breaks", breaks_panel),
    ):
        value = builder(user=user, today=today)
        setattr(board, name, value)
        if value is None:
            board.missing.append(name)
    return board
