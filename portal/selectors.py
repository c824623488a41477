"""Portal reads. The figures come from the same selectors as the staff portfolio page
(``portfolios.selectors.portfolio_dashboard``, ``portfolio_summaries``, ``portfolio_value_series``,
all reading the stored valuations of docs/decisions/0106): a client sees exactly what staff see.
Returns gross and net of advisory fees come from the fees app's own computation
(``fees.selectors.portfolio_returns_gross_net``, the staff ``/portfolios/{id}/fee-returns/``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from crm.models import Contact
from fees import selectors as fee_selectors
from portfolios import selectors as portfolio_selectors
from portfolios import valuations
from portfolios.analytics import PeriodReturn, annualise, longer_than_a_year
from portfolios.models import Portfolio

from . import access

ZERO = Decimal(0)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class FeeReturn:
    """Time-weighted return over a period net of fees (the advisory fees deducted from the account
    are a cost) and gross (they are added back), with the advisory fees deducted in it."""

    net: PeriodReturn | None
    gross: PeriodReturn | None
    fees: Decimal


def _period(base_date: date, end: date, cumulative: Decimal | None) -> PeriodReturn | None:
    if cumulative is None:
        return None
    annual = annualise(cumulative, (end - base_date).days) if longer_than_a_year(base_date, end) else None
    return PeriodReturn(base_date, end, cumulative, annual)


def fee_return(*, portfolio: Portfolio, base_date: date, end: date) -> FeeReturn | None:
    """Gross and net of fees from the close of ``base_date`` to the close of ``end`` (the period of a
    ``PeriodReturn``), annualised like the TWR beside it when longer than a year. Two queries."""
    if end <= base_date:
        return None
    r = fee_selectors.portfolio_returns_gross_net(portfolio=portfolio, start=base_date + ONE_DAY, end=end)
    return FeeReturn(_period(base_date, end, r.net), _period(base_date, end, r.gross), r.fees)


def _fee_return_of(portfolio: Portfolio, ret: PeriodReturn | None) -> FeeReturn | None:
    return None if ret is None else fee_return(portfolio=portfolio, base_date=ret.base_date, end=ret.end)


@dataclass
class PortfolioLine:
    portfolio: Portfolio
    value: Decimal | None
    value_in_total_currency: Decimal | None
    change_today: Decimal | None
    ytd: PeriodReturn | None
    since_inception: PeriodReturn | None
    updating: bool = False
    ytd_fee_return: FeeReturn | None = None
    since_inception_fee_return: FeeReturn | None = None


@dataclass
class Overview:
    contact: Contact
    currency: str
    total_value: Decimal
    change_today: Decimal
    missing_rates: list[str]
    portfolios: list[PortfolioLine] = field(default_factory=list)
    as_of: date | None = None
    allocation: dict[str, Decimal] = field(default_factory=dict)  # asset class -> weight of the total
    household: str | None = None


def _change_today(portfolio: Portfolio, today: date) -> Decimal | None:
    """Today's change of value net of today's flows, from the stored closes of yesterday and today."""
    rows = valuations.portfolio_valuations(portfolio=portfolio, start=today - timedelta(days=1), end=today)
    by_day = {r.date: r for r in rows}
    now, before = by_day.get(today), by_day.get(today - timedelta(days=1))
    if now is None:
        return None
    return now.value - (before.value if before else ZERO) - now.net_flows


def client_overview(*, scope: access.ClientScope, today: date | None = None) -> Overview:
    """Total value of the scope's portfolios (the contact's, or the household's) in their most
    common base currency (others converted at the day's rate), today's change, and per portfolio its
    value, YTD and since-inception TWR, each also gross and net of advisory fees."""
    today = today or timezone.localdate()
    portfolios = list(access.client_portfolios(scope))
    currency = Counter(p.base_currency for p in portfolios).most_common(1)[0][0] if portfolios else "USD"
    rates = portfolio_selectors.fx_to({p.base_currency for p in portfolios}, target=currency, on=today)
    summaries = portfolio_selectors.portfolio_summaries(portfolios, today=today)
    missing = sorted({p.base_currency for p in portfolios} - set(rates))
    overview = Overview(scope.contact, currency, ZERO, ZERO, missing)
    overview.as_of = today
    overview.household = scope.household.name if scope.household is not None else None
    weighted: dict[str, Decimal] = {}
    for p in portfolios:
        s = summaries.get(p.pk)
        value = s.value if s else None
        change = _change_today(p, today)
        rate = rates.get(p.base_currency)
        converted = value * rate if value is not None and rate is not None else None
        if converted is not None:
            overview.total_value += converted
            if converted:
                # the staff page's allocation of each portfolio, weighted by its value in the total's currency
                for bucket, weight in portfolio_selectors.portfolio_allocation(portfolio=p, on=today).items():
                    weighted[bucket] = weighted.get(bucket, ZERO) + weight * converted
        if change is not None and rate is not None:
            overview.change_today += change * rate
        overview.portfolios.append(
            PortfolioLine(
                p,
                value,
                converted,
                change,
                s.ytd if s else None,
                s.since_inception if s else None,
                valuations.valuation_status(portfolio=p).updating,
                _fee_return_of(p, s.ytd if s else None),
                _fee_return_of(p, s.since_inception if s else None),
            )
        )
    if overview.total_value:
        overview.allocation = {b: v / overview.total_value for b, v in sorted(weighted.items(), key=lambda kv: -kv[1])}
    return overview


def client_portfolio_page(*, portfolio: Portfolio, today: date | None = None) -> portfolio_selectors.Dashboard:
    """The staff portfolio page's own selector: holdings, allocations, returns by period, realised
    gains by year, since-inception performance."""
    return portfolio_selectors.portfolio_dashboard(portfolio=portfolio, today=today)


def period_fee_returns(*, portfolio: Portfolio, rows) -> list[FeeReturn | None]:
    """Gross and net of fees for each period row of the portfolio page (over the TWR's own dates)."""
    return [_fee_return_of(portfolio, row.twr) for row in rows]
