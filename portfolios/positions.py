"""The close of chosen positions of an account, day by day, valued exactly as the stored
valuations are (``portfolios.valuations``): what a fee schedule with excluded instruments or asset
classes takes out of the billable value (docs/fees.md, "Exclusions"; decision 1010)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from . import analytics
from .ledger import ledger_currencies, ledger_of
from .models import Portfolio
from .selectors.loading import _instrument_infos, _price_series, fx_series
from .valuation_engine import ONE_DAY

ZERO = Decimal(0)


def portfolios_positions_closes(
    *,
    portfolios: list[Portfolio],
    start: date,
    end: date,
    instrument_ids: set[int],
    asset_classes: set[str],
) -> dict[int, dict[date, Decimal]]:
    """``{portfolio id: {day: value in base}}``: the close of every calendar day of ``[start,
    end]`` of the positions each portfolio held in ``instrument_ids`` or in instruments of
    ``asset_classes`` (securities only, not the cash their trades moved). Computed by the same
    valuation engine, closes and FX rates as the stored valuations (``Valuation.value``), so
    ``value - positions`` is the rest of the account to the cent. What a fee schedule with
    excluded instruments or asset classes subtracts (docs/fees.md, "Exclusions").

    Cost: one ledger query per portfolio, then one query each for the instruments, their
    closes and the FX rates; the replay runs over the excluded instruments' transactions only.
    A portfolio that never held one of them maps to ``{}`` (nothing to subtract)."""
    out: dict[int, dict[date, Decimal]] = {p.pk: {} for p in portfolios}
    if not portfolios or not (instrument_ids or asset_classes):
        return out
    ledgers = {p.pk: ledger_of(portfolio=p) for p in portfolios}
    held = {t.instrument_id for txns in ledgers.values() for t in txns if t.instrument_id is not None}
    infos = _instrument_infos(held)
    excluded = {i for i in held if i in instrument_ids or (i in infos and infos[i].asset_class in asset_classes)}
    if not excluded:
        return out
    prices = _price_series(excluded, since=None, end=end)
    for portfolio in portfolios:
        txns = [t for t in ledgers[portfolio.pk] if t.instrument_id in excluded]
        if not txns or txns[0].date > end:
            continue
        ids = {t.instrument_id for t in txns}
        currencies = ledger_currencies(txns) | {infos[i].currency for i in ids if i in infos}
        data = analytics.PortfolioData(
            base_currency=portfolio.base_currency,
            txns=txns,
            instruments={i: infos[i] for i in ids if i in infos},
            prices={i: prices[i] for i in ids if i in prices},
            fx=fx_series(currencies, base=portfolio.base_currency, since=None, end=end),
            lot_method=portfolio.lot_method,
        )
        _, per_currency = analytics.value_series_by_currency(data, start, end)
        day = start
        for parts in per_currency:
            out[portfolio.pk][day] = sum((sec * rate for sec, _cash, rate in parts.values()), ZERO)
            day += ONE_DAY
    return out
