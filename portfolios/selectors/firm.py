"""Firm-wide: the latest closes, FX to one currency, the exposure by instrument and sector."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from portfolios.market.models import Instrument, Price

from .. import analytics
from ..access import portfolios_visible_to
from ..models import CashBalance, Holding
from .common import FIRM_CURRENCY, INSTRUMENT_FIELDS, ONE, ZERO
from .loading import (
    fx_series,
)


def latest_closes(instrument_ids, *, on: date) -> dict[int, tuple[date, Decimal, Decimal | None]]:
    """Per instrument: (date, last close on or before ``on``, the close before it or None). One query."""
    ids = sorted(set(instrument_ids))
    if not ids:
        return {}
    table = Price._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            "SELECT instrument_id, date, close, prev FROM ("  # noqa: S608
            " SELECT instrument_id, date, close,"
            "  LAG(close) OVER (PARTITION BY instrument_id ORDER BY date) AS prev,"
            "  ROW_NUMBER() OVER (PARTITION BY instrument_id ORDER BY date DESC) AS rn"
            f" FROM {table} WHERE instrument_id = ANY(%s) AND date <= %s AND date > %s"
            ") t WHERE rn = 1",
            [ids, on, on - timedelta(days=31)],
        )
        found = {iid: (d, px, prev) for iid, d, px, prev in cur.fetchall()}
        missing = [i for i in ids if i not in found]
        if missing:  # stale instruments: no close in the last month, take the last one at all
            cur.execute(
                f"SELECT DISTINCT ON (instrument_id) instrument_id, date, close FROM {table} "  # noqa: S608
                "WHERE instrument_id = ANY(%s) AND date <= %s ORDER BY instrument_id, date DESC",
                [missing, on],
            )
            for iid, d, px in cur.fetchall():
                found[iid] = (d, px, None)
    return found


def fx_to(currencies, *, target: str, on: date) -> dict[str, Decimal]:
    """Latest value of one unit of each currency in ``target`` on ``on``; currencies without a
    known rate are left out (the caller reports them)."""
    series = fx_series(currencies, base=target, since=on, end=on)
    out = {target: ONE}
    for c in set(currencies) - {target}:
        r = analytics.price_on(series.get(c, []), on)
        if r is not None:
            out[c] = r
    return out


@dataclass
class ExposureRow:
    key: str
    label: str
    value: Decimal
    weight: Decimal
    clients: list[str]
    portfolios: list[int]
    instrument_id: int | None = None
    sector: str = ""
    asset_class: str = ""
    currency: str = ""
    day_change: Decimal | None = None
    client_count: int = 0  # distinct clients holding it (``clients`` may be left empty)

    def __post_init__(self) -> None:
        self.client_count = self.client_count or len(self.clients)


@dataclass
class FirmExposure:
    currency: str
    on: date
    total_value: Decimal  # AUM: securities and cash of every portfolio in the caller's book
    securities_value: Decimal
    cash_value: Decimal
    portfolio_count: int
    by_instrument: list[ExposureRow]
    by_sector: list[ExposureRow]
    movers: list[ExposureRow]
    # Left out of every figure, and said so: currencies with no rate to ``currency`` yet, and
    # instruments without any close yet.
    missing_rates: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)


def firm_exposure(*, user, currency: str = FIRM_CURRENCY, on: date | None = None, movers: int = 5) -> FirmExposure:
    """AUM, exposure per instrument and per sector (with the clients holding each), and the day's
    top movers, over the portfolios ``user`` may see (archived ones excluded), in ``currency``.
    Amounts in a currency with no rate to ``currency`` are left out and listed in
    ``missing_rates`` (a firm-wide view with a named gap beats no view at all).

    Valued from the derived holdings and cash balances at the last close on or before ``on``.
    A fixed number of queries, whatever the number of portfolios and holdings."""
    on = on or timezone.localdate()
    currency = (currency or FIRM_CURRENCY).upper()
    visible = portfolios_visible_to(user, include_archived=False)
    holdings = list(
        Holding.objects.filter(portfolio__in=visible).values_list(
            "portfolio_id",
            "instrument_id",
            "quantity",
            "currency",
            "portfolio__name",
            "portfolio__client__first_name",
            "portfolio__client__last_name",
        )
    )
    cash = list(CashBalance.objects.filter(portfolio__in=visible).values_list("portfolio_id", "currency", "amount"))
    portfolio_count = visible.count()
    ids = {h[1] for h in holdings}
    infos = {row["id"]: row for row in Instrument.objects.filter(pk__in=ids).values(*INSTRUMENT_FIELDS)}
    closes = latest_closes(ids, on=on)
    currencies = {h[3] for h in holdings} | {c[1] for c in cash}
    rates = fx_to(currencies, target=currency, on=on)

    per_instr: dict[int, dict] = {}
    unpriced = set()
    for pid, iid, qty, ccy, pname, first, last in holdings:
        close = closes.get(iid)
        if close is None:
            unpriced.add(infos[iid]["symbol"])
            continue  # no market price at all yet: not valued (docs/portfolios.md)
        if ccy not in rates:
            continue
        value = qty * close[1] * rates[ccy]
        row = per_instr.setdefault(iid, {"value": ZERO, "clients": set(), "portfolios": set()})
        row["value"] += value
        row["clients"].add(f"{first} {last}".strip() if first or last else pname)
        row["portfolios"].add(pid)
    securities = sum((r["value"] for r in per_instr.values()), ZERO)
    cash_value = sum((amount * rates[c] for _, c, amount in cash if c in rates), ZERO)
    total = securities + cash_value

    def weight(v: Decimal) -> Decimal:
        return v / total if total else ZERO

    by_instrument = []
    for iid, r in per_instr.items():
        info = infos[iid]
        d, px, prev = closes[iid]
        by_instrument.append(
            ExposureRow(
                key=str(iid),
                label=f"{info['symbol']} · {info['name']}",
                value=r["value"],
                weight=weight(r["value"]),
                clients=sorted(r["clients"]),
                portfolios=sorted(r["portfolios"]),
                instrument_id=iid,
                sector=info["sector"] or analytics.UNCLASSIFIED,
                asset_class=info["asset_class"],
                currency=info["currency"],
                day_change=(px / prev - ONE) if prev else None,
            )
        )
    by_instrument.sort(key=lambda r: -r.value)
    sectors: dict[str, dict] = {}
    for exposure in by_instrument:
        s = sectors.setdefault(exposure.sector, {"value": ZERO, "clients": set(), "portfolios": set()})
        s["value"] += exposure.value
        s["clients"].update(exposure.clients)
        s["portfolios"].update(exposure.portfolios)
    by_sector = sorted(
        (
            ExposureRow(
                key=k,
                label=k,
                value=v["value"],
                weight=weight(v["value"]),
                clients=sorted(v["clients"]),
                portfolios=sorted(v["portfolios"]),
                sector=k,
            )
            for k, v in sectors.items()
        ),
        key=lambda r: -r.value,
    )
    changes = [(abs(r.day_change), r) for r in by_instrument if r.day_change is not None]
    top = [r for _, r in sorted(changes, key=lambda pair: -pair[0])]
    return FirmExposure(
        currency=currency,
        on=on,
        total_value=total,
        securities_value=securities,
        cash_value=cash_value,
        portfolio_count=portfolio_count,
        by_instrument=by_instrument,
        by_sector=by_sector,
        movers=top[:movers],
        missing_rates=sorted(currencies - set(rates)),
        unpriced=sorted(unpriced),
    )
