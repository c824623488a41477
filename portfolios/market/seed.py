"""Deterministic demo market data: ~20 instruments in USD and EUR, daily closes and EUR/USD.

Pure generation (no ORM): the same anchor, seed and end date always give the same numbers, and a
later end date only appends days, so re-seeding on another day never conflicts with stored rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

SEED = 20260101
ANCHOR = date(2023, 1, 2)  # first generated business day: about four years of history in 2026


@dataclass(frozen=True)
class DemoInstrument:
    symbol: str
    exchange: str
    name: str
    asset_class: str
    currency: str
    sector: str
    country: str
    start_price: float
    drift: float  # annual
    volatility: float  # annual


INSTRUMENTS: tuple[DemoInstrument, ...] = (
    DemoInstrument("AAPL", "XNAS", "Apple Inc.", "equity", "USD", "Technology", "US", 125.0, 0.12, 0.28),
    DemoInstrument("MSFT", "XNAS", "Microsoft Corp.", "equity", "USD", "Technology", "US", 240.0, 0.11, 0.26),
    DemoInstrument("JNJ", "XNYS", "Johnson & Johnson", "equity", "USD", "Health care", "US", 176.0, 0.04, 0.17),
    DemoInstrument("JPM", "XNYS", "JPMorgan Chase & Co.", "equity", "USD", "Financials", "US", 134.0, 0.09, 0.25),
    DemoInstrument("XOM", "XNYS", "Exxon Mobil Corp.", "equity", "USD", "Energy", "US", 110.0, 0.05, 0.27),
    DemoInstrument(
        "VTI", "ARCX", "Vanguard Total Stock Market ETF", "etf", "USD", "Diversified", "US", 190.0, 0.09, 0.18
    ),
    DemoInstrument(
        "AGG", "ARCX", "iShares Core US Aggregate Bond ETF", "bond", "USD", "Fixed income", "US", 97.0, 0.02, 0.06
    ),
    DemoInstrument(
        "TLT", "XNAS", "iShares 20+ Year Treasury Bond ETF", "bond", "USD", "Government bonds", "US", 99.0, 0.0, 0.15
    ),
    DemoInstrument(
        "VFIAX", "", "Vanguard 500 Index Fund Admiral", "fund", "USD", "Diversified", "US", 350.0, 0.1, 0.18
    ),
    DemoInstrument(
        "VNQ", "ARCX", "Vanguard Real Estate ETF", "real_estate", "USD", "Real estate", "US", 82.0, 0.04, 0.22
    ),
    DemoInstrument("GLD", "ARCX", "SPDR Gold Shares", "commodity", "USD", "Precious metals", "US", 170.0, 0.07, 0.14),
    DemoInstrument(
        "SGOV", "ARCX", "iShares 0-3 Month Treasury Bond ETF", "cash", "USD", "Cash", "US", 100.0, 0.045, 0.003
    ),
    DemoInstrument("SAP", "XETR", "SAP SE", "equity", "EUR", "Technology", "DE", 98.0, 0.13, 0.25),
    DemoInstrument("ASML", "XAMS", "ASML Holding N.V.", "equity", "EUR", "Technology", "NL", 520.0, 0.1, 0.33),
    DemoInstrument(
        "MC", "XPAR", "LVMH Moët Hennessy Louis Vuitton", "equity", "EUR", "Consumer", "FR", 690.0, 0.03, 0.26
    ),
    DemoInstrument("ALV", "XETR", "Allianz SE", "equity", "EUR", "Financials", "DE", 200.0, 0.08, 0.2),
    DemoInstrument("SIE", "XETR", "Siemens AG", "equity", "EUR", "Industrials", "DE", 130.0, 0.08, 0.24),
    DemoInstrument(
        "IEAG", "XAMS", "iShares Core Euro Aggregate Bond ETF", "bond", "EUR", "Fixed income", "IE", 110.0, 0.015, 0.05
    ),
    DemoInstrument(
        "CARMP", "XPAR", "Carmignac Patrimoine A EUR", "fund", "EUR", "Multi-asset", "FR", 640.0, 0.03, 0.08
    ),
    DemoInstrument(
        "IPRP",
        "XAMS",
        "iShares European Property Yield ETF",
        "real_estate",
        "EUR",
        "Real estate",
        "IE",
        35.0,
        0.02,
        0.23,
    ),
    DemoInstrument("4GLD", "XETR", "Xetra-Gold", "commodity", "EUR", "Precious metals", "DE", 53.0, 0.07, 0.14),
    DemoInstrument(
        "XEON", "XETR", "Xtrackers EUR Overnight Rate Swap ETF", "cash", "EUR", "Cash", "LU", 135.0, 0.03, 0.002
    ),
)

FX_PAIR = ("EUR", "USD")
FX_START, FX_DRIFT, FX_VOLATILITY = 1.07, 0.0, 0.07
TRADING_DAYS = 252


def business_days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def random_walk(
    key: str, start_value: float, drift: float, volatility: float, days: list[date], places: int, seed: int = SEED
) -> Iterator[tuple[date, Decimal]]:
    """Geometric Brownian motion, one step per business day, from a generator seeded by ``key``."""
    rng = random.Random(f"{seed}:{key}")
    dt = 1 / TRADING_DAYS
    value = start_value
    quantum = Decimal(1).scaleb(-places)
    for day in days:
        shock = rng.gauss(0.0, 1.0)
        value *= math.exp((drift - volatility**2 / 2) * dt + volatility * math.sqrt(dt) * shock)
        yield day, Decimal(repr(value)).quantize(quantum)


def instrument_rows() -> list[tuple[int, dict]]:
    return [
        (
            n,
            {
                "symbol": i.symbol,
                "exchange": i.exchange,
                "name": i.name,
                "asset_class": i.asset_class,
                "currency": i.currency,
                "sector": i.sector,
                "country": i.country,
            },
        )
        for n, i in enumerate(INSTRUMENTS, start=2)
    ]


def price_rows(end: date, *, seed: int = SEED) -> list[tuple[int, dict]]:
    days = list(business_days(ANCHOR, end))
    rows, n = [], 1
    for i in INSTRUMENTS:
        for day, close in random_walk(i.symbol, i.start_price, i.drift, i.volatility, days, 4, seed):
            n += 1
            rows.append((n, {"symbol": i.symbol, "exchange": i.exchange, "date": day.isoformat(), "close": str(close)}))
    return rows


def fx_rows(end: date, *, seed: int = SEED) -> list[tuple[int, dict]]:
    days = list(business_days(ANCHOR, end))
    base, quote = FX_PAIR
    return [
        (n, {"base": base, "quote": quote, "date": day.isoformat(), "rate": str(rate)})
        for n, (day, rate) in enumerate(random_walk("EURUSD", FX_START, FX_DRIFT, FX_VOLATILITY, days, 6, seed), 2)
    ]
