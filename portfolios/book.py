"""The dashboard's firm-wide figures of a caller's book, read from what is stored (decision 0920).

- ``book_totals``: assets under management, cash and the day's change from the stored
  valuations. A caller who sees the whole firm reads the firm's daily totals
  (``FirmValuation``: a few rows, whatever the number of portfolios); an advisor's book is summed
  by PostgreSQL over their portfolios' stored closes of the days read.
- ``book_exposure``: assets by sector and the day's top movers from the derived holdings,
  summed per instrument by PostgreSQL (one row per instrument, not per holding).
- ``book_performance``: the value-weighted year-to-date and since-inception returns of the book
  and its largest portfolios, from each portfolio's stored headline figures
  (``PortfolioFigures``, decision 1000): one aggregate over one row per portfolio.

Both cost a fixed number of queries whatever the size of the book; neither replays a ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DateField, ExpressionWrapper, F, Max, Min, Q, Subquery, Sum
from django.utils import timezone

from . import analytics, valuations
from .access import portfolios_visible_to, sees_whole_firm
from .models import Holding, PortfolioFigures, Valuation
from .selectors import FIRM_CURRENCY, INSTRUMENT_FIELDS, ExposureRow, fx_to, latest_closes

ZERO = Decimal(0)
ONE = Decimal(1)
#: Days looked back for the last stored close (a store not extended yet today still shows figures).
LOOKBACK_DAYS = 7


@dataclass
class BookTotals:
    currency: str
    on: date | None  # the day of the figures: the last stored day on or before the day asked for
    value: Decimal
    cash: Decimal
    day_change: Decimal | None  # value less the day's net flows, against the day before
    portfolio_count: int
    missing_rates: list[str] = field(default_factory=list)  # base currencies with no rate to ``currency``

    @property
    def day_change_pct(self) -> Decimal | None:
        if self.day_change is None:
            return None
        before = self.value - self.day_change
        return self.day_change / before * 100 if before else None


def _stored_days(user, *, on: date, days: int) -> list[tuple[date, str, Decimal, Decimal, Decimal]]:
    """``(day, base currency, value, net flows, cash)`` of the caller's book over the ``days``
    days ending ``on``: the firm's stored totals, or an advisor's book summed in SQL."""
    start = on - timedelta(days=days)
    if sees_whole_firm(user):
        return [
            (d.date, d.currency, d.value, d.net_flows, d.cash) for d in valuations.firm_valuations(start=start, end=on)
        ]
    visible = portfolios_visible_to(user, include_archived=False)
    window = Valuation.objects.filter(portfolio__in=visible, date__gte=start, date__lte=on)
    if days > 1:
        # Only the book's last stored day of the window and the day before are used: read those
        # two (the last day found along the (date, portfolio) index, newest first), not every
        # close of the week (14,007 rows for an advisor at the big firm; decision 1300).
        last = window.order_by("-date").values("date")[:1]
        day_before = ExpressionWrapper(Subquery(last) - timedelta(days=1), output_field=DateField())
        window = window.filter(date__gte=day_before)
    return list(
        window.values("date", "portfolio__base_currency")
        .annotate(v=Sum("value"), f=Sum("net_flows"), c=Sum("cash"))
        .order_by("date", "portfolio__base_currency")
        .values_list("date", "portfolio__base_currency", "v", "f", "c")
    )


def book_totals(*, user, currency: str = FIRM_CURRENCY, on: date | None = None) -> BookTotals:
    """AUM, cash and the day's change of the portfolios ``user`` may see (archived ones
    excluded), in ``currency`` at the day's rates. Three queries (the stored days, the rates,
    the portfolio count), four when today is not stored yet. Amounts in a base currency with no
    rate to ``currency`` are left out and named in ``missing_rates``."""
    on = on or timezone.localdate()
    currency = (currency or FIRM_CURRENCY).upper()
    rows = _stored_days(user, on=on, days=1)  # the day and the one before: the usual case
    if not any(r[0] == on for r in rows):  # not valued today yet: the last stored day of the week
        rows = _stored_days(user, on=on, days=LOOKBACK_DAYS)
    count = portfolios_visible_to(user, include_archived=False).count()
    if not rows:
        return BookTotals(currency, None, ZERO, ZERO, None, count)
    last = max(r[0] for r in rows)
    before = last - timedelta(days=1)
    rates = fx_to({r[1] for r in rows}, target=currency, on=last)
    value = cash = change = ZERO
    had_before = False
    previous = {r[1]: r[2] for r in rows if r[0] == before}
    for day, ccy, v, flows, c in rows:
        if day != last or ccy not in rates:
            continue
        rate = rates[ccy]
        value += v * rate
        cash += c * rate
        if ccy in previous:
            had_before = True
            change += (v - flows - previous[ccy]) * rate
    missing = sorted({r[1] for r in rows if r[0] == last} - set(rates))
    return BookTotals(currency, last, value, cash, change if had_before else None, count, missing)


@dataclass
class BookExposure:
    currency: str
    by_sector: list[ExposureRow]
    movers: list[ExposureRow]
    missing_rates: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)


def book_exposure(*, user, currency: str = FIRM_CURRENCY, on: date | None = None, movers: int = 5) -> BookExposure:
    """Assets by sector and the day's top movers of the portfolios ``user`` may see (archived
    ones excluded): the derived holdings summed per instrument and currency by PostgreSQL, valued
    at the last close on or before ``on``. Four queries (holdings, instruments, closes, rates)."""
    from portfolios.market.models import Instrument

    on = on or timezone.localdate()
    currency = (currency or FIRM_CURRENCY).upper()
    visible = portfolios_visible_to(user, include_archived=False)
    held = list(
        Holding.objects.filter(portfolio__in=visible)
        .values("instrument_id", "currency")
        .annotate(
            qty=Sum("quantity"),
            clients=Count("portfolio__client", distinct=True),
            no_client=Count("portfolio", filter=Q(portfolio__client__isnull=True), distinct=True),
            holders=Count("portfolio", distinct=True),
        )
        .order_by("instrument_id", "currency")
        .values_list("instrument_id", "currency", "qty", "clients", "no_client", "holders")
    )
    ids = {h[0] for h in held}
    infos = {row["id"]: row for row in Instrument.objects.filter(pk__in=ids).values(*INSTRUMENT_FIELDS)}
    closes = latest_closes(ids, on=on)
    currencies = {h[1] for h in held}
    rates = fx_to(currencies, target=currency, on=on)
    per_instr: dict[int, dict] = {}
    unpriced = set()
    for iid, ccy, qty, clients, no_client, holders in held:
        close = closes.get(iid)
        if close is None:
            unpriced.add(infos[iid]["symbol"])
            continue
        if ccy not in rates:
            continue
        sums = per_instr.setdefault(iid, {"value": ZERO, "clients": 0, "holders": 0})
        sums["value"] += qty * close[1] * rates[ccy]
        sums["clients"] += clients + no_client
        sums["holders"] += holders
    total = sum((r["value"] for r in per_instr.values()), ZERO)
    instruments = []
    for iid, r in per_instr.items():
        info = infos[iid]
        _d, px, prev = closes[iid]
        instruments.append(
            ExposureRow(
                key=str(iid),
                label=f"{info['symbol']} · {info['name']}",
                value=r["value"],
                weight=r["value"] / total if total else ZERO,
                clients=[],
                portfolios=[],
                instrument_id=iid,
                sector=info["sector"] or analytics.UNCLASSIFIED,
                asset_class=info["asset_class"],
                currency=info["currency"],
                day_change=(px / prev - ONE) if prev else None,
                client_count=r["clients"],
            )
        )
    instruments.sort(key=lambda r: -r.value)
    sectors: dict[str, Decimal] = {}
    for exposure in instruments:
        sectors[exposure.sector] = sectors.get(exposure.sector, ZERO) + exposure.value
    by_sector = sorted(
        (
            ExposureRow(
                key=k, label=k, value=v, weight=v / total if total else ZERO, clients=[], portfolios=[], sector=k
            )
            for k, v in sectors.items()
        ),
        key=lambda r: -r.value,
    )
    top = sorted((r for r in instruments if r.day_change is not None), key=lambda r: -abs(r.day_change or ZERO))
    return BookExposure(
        currency=currency,
        by_sector=by_sector,
        movers=top[:movers],
        missing_rates=sorted(currencies - set(rates)),
        unpriced=sorted(unpriced),
    )


@dataclass
class PerformanceFigure:
    portfolio: object  # the Portfolio (with its client)
    value: Decimal  # in the portfolio's base currency
    ytd: Decimal | None  # fractions, as stored
    since_inception: Decimal | None
    as_of: date


@dataclass
class BookPerformance:
    currency: str
    ytd: Decimal | None  # value-weighted, a fraction
    since_inception: Decimal | None
    largest: list[PerformanceFigure]
    as_of: date | None  # the latest day of the figures read
    behind: int = 0  # portfolios whose figures are of an earlier day (their store is not extended yet)
    missing_rates: list[str] = field(default_factory=list)


def book_performance(*, user, currency: str = FIRM_CURRENCY, largest: int = 8) -> BookPerformance:
    """The year-to-date and since-inception time-weighted returns of the portfolios ``user`` may
    see (archived ones excluded), each weighted by its value in ``currency`` (portfolios with a
    positive value and the return measured), and the ``largest`` portfolios by value, from the
    stored ``PortfolioFigures`` (each as of its portfolio's last stored close). Three queries
    (the sums per base currency, the rates, the largest), whatever the size of the book."""
    currency = (currency or FIRM_CURRENCY).upper()
    visible = portfolios_visible_to(user, include_archived=False)
    figures = PortfolioFigures.objects.filter(portfolio__in=visible)
    weighted_ytd = Q(value__gt=0, ytd__isnull=False)
    weighted_si = Q(value__gt=0, since_inception__isnull=False)
    sums = list(
        figures.values("portfolio__base_currency")
        .annotate(
            ytd_weight=Sum("value", filter=weighted_ytd),
            ytd_sum=Sum(F("value") * F("ytd"), filter=weighted_ytd),
            si_weight=Sum("value", filter=weighted_si),
            si_sum=Sum(F("value") * F("since_inception"), filter=weighted_si),
            first=Min("as_of"),
            last=Max("as_of"),
            n=Count("pk"),
        )
        .order_by("portfolio__base_currency")
    )
    if not sums:
        return BookPerformance(currency, None, None, [], None)
    last = max(r["last"] for r in sums)
    rates = fx_to({r["portfolio__base_currency"] for r in sums}, target=currency, on=last)

    def weighted(pairs: list[tuple[str, Decimal | None, Decimal | None]]) -> Decimal | None:
        """``(base currency, sum of values, sum of value x return)`` -> the weighted return."""
        num = den = ZERO
        for ccy, weight, total in pairs:
            rate = rates.get(ccy)
            if rate is None or not weight or total is None:
                continue
            num += total * rate
            den += weight * rate
        return num / den if den else None

    behind = 0
    if any(r["first"] < last for r in sums):  # rare: some store not extended to the latest day yet
        behind = figures.filter(as_of__lt=last).count()
    top = [
        PerformanceFigure(f.portfolio, f.value, f.ytd, f.since_inception, f.as_of)
        for f in figures.select_related("portfolio__client").order_by("-value", "portfolio_id")[:largest]
    ]
    return BookPerformance(
        currency=currency,
        ytd=weighted([(r["portfolio__base_currency"], r["ytd_weight"], r["ytd_sum"]) for r in sums]),
        since_inception=weighted([(r["portfolio__base_currency"], r["si_weight"], r["si_sum"]) for r in sums]),
        largest=top,
        as_of=last,
        behind=behind,
        missing_rates=sorted({r["portfolio__base_currency"] for r in sums} - set(rates)),
    )
