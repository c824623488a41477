"""Loading a portfolio's ledger, instruments, closes and FX rates for the analytics, in a fixed number
of queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from portfolios.market.models import FxRate, Instrument, Price

from .. import analytics
from ..ledger import ledger_currencies, ledger_of
from ..models import Portfolio
from .common import FIRM_CURRENCY, INSTRUMENT_FIELDS, ONE

# Dates of closes travel as day offsets from this day (integers: no DateStyle to depend on).
_DAY_ZERO = date(2000, 1, 1)
_DAY_ZERO_ORDINAL = _DAY_ZERO.toordinal()


def _array_items(text: str) -> list[str]:
    """Elements of a PostgreSQL array of numbers in its text form (``{1,2.5,3}``)."""
    return text[1:-1].split(",")


def _instrument_pk(instrument_id: object) -> int:
    """An instrument id as the analytics carry it (``object``: they take any key), back as the
    primary key it always is when it comes from the database."""
    if not isinstance(instrument_id, int):
        raise TypeError(f"instrument ids from the database are integers, not {instrument_id!r}")
    return instrument_id


def _price_series(
    instrument_ids: Iterable[object], *, since: date | None, end: date
) -> dict[object, analytics.DatedValues]:
    """Closes per instrument up to ``end``; with ``since``, only from ``since`` on plus the last
    close before it (enough for carry-forward valuation from ``since + 1``).

    Speed matters here (10 years x 50 instruments = 130,000 closes): each instrument's dates and
    closes come as two arrays from one grouped query (one scan, one round trip), each array as
    one string, and are kept as two lists (``analytics.DatedValues``), not one pair per close.
    Instruments quoted on the same days (the usual case) share one list of dates, sent and
    parsed once. Closes become ``Decimal`` straight from their text (what psycopg's numeric
    loader returns too, same digits and exponent), without its per-element array parsing.
    Measurements: docs/analytics.md, "Through the database: loading and the date grid"."""
    out: dict[object, analytics.DatedValues] = {}
    ids = sorted(_instrument_pk(i) for i in instrument_ids if i is not None)
    if not ids:
        return out
    table = Price._meta.db_table
    lower = "AND date >= %s" if since is not None else ""
    params: list[date | list[int]] = [_DAY_ZERO, ids, since, end] if since is not None else [_DAY_ZERO, ids, end]
    with connection.cursor() as cur:
        if since is not None:
            cur.execute(
                f"SELECT DISTINCT ON (instrument_id) instrument_id, date, close FROM {table} "  # noqa: S608
                "WHERE instrument_id = ANY(%s) AND date < %s ORDER BY instrument_id, date DESC",
                [ids, since],
            )
            for iid, d, px in cur.fetchall():
                out[iid] = analytics.DatedValues([d], [px])
        # An instrument quoted on the same days as the one before it gets NULL for its dates:
        # they are sent, and turned into ``date`` objects, once.
        cur.execute(
            "SELECT instrument_id, CASE WHEN days = lag(days) OVER (ORDER BY instrument_id) "  # noqa: S608
            "THEN NULL ELSE days::text END, closes FROM ("
            "SELECT instrument_id, array_agg(date - %s ORDER BY date) AS days, "
            f"array_agg(close ORDER BY date)::text AS closes FROM {table} "
            f"WHERE instrument_id = ANY(%s) {lower} AND date <= %s GROUP BY instrument_id"
            ") AS series ORDER BY instrument_id",
            params,
        )
        days: list[date] = []
        from_ordinal, zero = date.fromordinal, _DAY_ZERO_ORDINAL
        for iid, day_text, close_text in cur.fetchall():
            if day_text is not None:
                days = [from_ordinal(zero + int(n)) for n in _array_items(day_text)]
            closes = list(map(Decimal, _array_items(close_text)))
            before = out.get(iid)
            if before is None:
                out[iid] = analytics.DatedValues(days, closes)
            else:  # the last close before ``since``, then these
                out[iid] = analytics.DatedValues(before.dates + days, before.values + closes)
    return out


def _merge_cross(a: analytics.PriceSeries, b: analytics.PriceSeries) -> list[tuple[date, Decimal]]:
    """Product of two carried-forward rate series on the union of their dates."""
    days = sorted({d for d, _ in a} | {d for d, _ in b})
    out = []
    for d in days:
        ra, rb = analytics.price_on(a, d), analytics.price_on(b, d)
        if ra is not None and rb is not None:
            out.append((d, ra * rb))
    return out


def fx_series(
    currencies: Iterable[str], *, base: str, since: date | None, end: date
) -> dict[str, analytics.PriceSeries]:
    """Value of one unit of each currency in ``base``, per date (direct pair, inverse pair, or a
    cross through USD). One query."""
    wanted = {c for c in currencies if c and c != base}
    if not wanted:
        return {}
    codes = sorted(wanted | {base, FIRM_CURRENCY})
    # keep a margin so every pair has a rate before ``since`` to carry forward
    lower = "AND date >= %s" if since is not None else ""
    params: list[date | list[str]] = [_DAY_ZERO, codes, codes, end]
    if since is not None:
        params.append(since - timedelta(days=14))
    pairs: dict[tuple[str, str], analytics.DatedValues] = {}
    day_lists: dict[str, list[date]] = {}  # pairs quoted on the same days share one list
    from_ordinal, zero = date.fromordinal, _DAY_ZERO_ORDINAL
    with connection.cursor() as cur:
        # one array of dates and one of rates per pair, as for the closes (_price_series)
        cur.execute(
            "SELECT base, quote, array_agg(date - %s ORDER BY date)::text, array_agg(rate ORDER BY date)::text "  # noqa: S608
            f"FROM {FxRate._meta.db_table} WHERE base = ANY(%s) AND quote = ANY(%s) AND date <= %s {lower} "
            "GROUP BY base, quote",
            params,
        )
        for b, q, day_text, rate_text in cur.fetchall():
            days = day_lists.get(day_text)
            if days is None:
                days = day_lists[day_text] = [from_ordinal(zero + int(n)) for n in _array_items(day_text)]
            pairs[(b, q)] = analytics.DatedValues(days, list(map(Decimal, _array_items(rate_text))))

    def one(c: str, target: str) -> analytics.PriceSeries:
        if (c, target) in pairs:
            return pairs[(c, target)]
        if (target, c) in pairs:
            inverse = pairs[(target, c)]
            return analytics.DatedValues(inverse.dates, [ONE / r for r in inverse.values])
        return []

    out: dict[str, analytics.PriceSeries] = {}
    for c in wanted:
        series = one(c, base)
        if not series and FIRM_CURRENCY not in (c, base):
            series = _merge_cross(one(c, FIRM_CURRENCY), one(FIRM_CURRENCY, base))
        if series:
            out[c] = series
    return out


def _instrument_infos(ids: Iterable[object]) -> dict[object, analytics.InstrumentInfo]:
    return {
        row["id"]: analytics.InstrumentInfo(
            id=row["id"],
            symbol=row["symbol"],
            currency=row["currency"],
            asset_class=row["asset_class"] or None,
            sector=row["sector"] or None,
            country=row["country"] or None,
            name=row["name"],
        )
        for row in Instrument.objects.filter(pk__in=[_instrument_pk(i) for i in ids if i is not None]).values(
            *INSTRUMENT_FIELDS
        )
    }


@dataclass
class LoadedPortfolio:
    portfolio: Portfolio
    data: analytics.PortfolioData
    benchmark_prices: analytics.PriceSeries = field(default_factory=list)

    @property
    def inception(self) -> date | None:
        return self.data.inception


def portfolio_data(*, portfolio: Portfolio, end: date | None = None, since: date | None = None) -> LoadedPortfolio:
    """Ledger, instruments, closes and FX rates of ``portfolio`` as ``analytics.PortfolioData``.

    With ``since``, closes and rates before ``since`` are reduced to the last one (valuations from
    ``since`` on are unchanged). Four queries (five with ``since``), whatever the size of the ledger."""
    end = end or timezone.localdate()
    txns = ledger_of(portfolio=portfolio)
    ids = {t.instrument_id for t in txns if t.instrument_id is not None}
    bench_id = portfolio.benchmark_id
    instruments = _instrument_infos(ids | ({bench_id} if bench_id else set()))
    prices = _price_series(ids | ({bench_id} if bench_id else set()), since=since, end=end)
    bench: analytics.PriceSeries = []
    if bench_id is not None:
        bench = prices.pop(bench_id, []) if bench_id not in ids else prices.get(bench_id, [])
    currencies = ledger_currencies(txns) | {i.currency for i in instruments.values()}
    fx = fx_series(currencies, base=portfolio.base_currency, since=since, end=end)
    data = analytics.PortfolioData(
        base_currency=portfolio.base_currency,
        txns=txns,
        instruments=instruments,
        prices=prices,
        fx=fx,
        lot_method=portfolio.lot_method,
    )
    return LoadedPortfolio(portfolio=portfolio, data=data, benchmark_prices=bench)
