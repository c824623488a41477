"""Time the pure analytics on the brief's target portfolio (run by hand, never in CI).

10 years of daily (weekday) closes for 50 instruments in three currencies, daily FX rates,
5,000 ledger rows (deposits, buys, sells, dividends, fees, a withdrawal or two, splits).
Generated deterministically with random.Random(42). Times, per run:

  * ``performance(SI)``: one value series pass + TWR + MWR (XIRR) + drawdown + volatility +
    benchmark + period summary (realised gains replay all lots);
  * ``allocation`` by all four dimensions (one holdings snapshot, shared);
  * a separate ``value_series`` call, as a page that draws the chart would make.

Usage: .venv/bin/python bench/analytics_bench.py [runs]
"""

import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portfolios import analytics as a  # noqa: E402

START = date(2015, 1, 1)
END = date(2024, 12, 31)
N_INSTRUMENTS = 50
N_TXNS = 5000
CURRENCIES = ("EUR", "USD", "GBP")  # base EUR


def build(seed: int = 42) -> tuple[a.PortfolioData, list]:
    rng = random.Random(seed)
    days = []
    d = START
    while d <= END:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)

    instruments, prices = {}, {}
    for k in range(N_INSTRUMENTS):
        iid = k + 1
        ccy = CURRENCIES[k % 3]
        instruments[iid] = a.InstrumentInfo(
            iid,
            f"SYM{iid}",
            ccy,
            asset_class=rng.choice(["equity", "bond", "fund", "commodity"]),
            sector=rng.choice(["tech", "health", "energy", "financials", "utilities"]),
            country=rng.choice(["US", "DE", "GB", "FR", "JP"]),
        )
        px = rng.uniform(20, 200)
        series = []
        for day in days:
            px *= 1 + rng.gauss(0.0003, 0.015)
            series.append((day, Decimal(f"{px:.4f}")))
        prices[iid] = series

    fx = {}
    for ccy, level in (("USD", 0.9), ("GBP", 1.15)):
        series = []
        for day in days:
            level *= 1 + rng.gauss(0, 0.004)
            series.append((day, Decimal(f"{level:.6f}")))
        fx[ccy] = series

    benchmark, level = [], 100.0
    for day in days:
        level *= 1 + rng.gauss(0.0003, 0.01)
        benchmark.append((day, Decimal(f"{level:.4f}")))

    txns, held = [], dict.fromkeys(instruments, 0)
    n = 0

    def add(**kw):
        nonlocal n
        n += 1
        txns.append(a.Txn(id=n, **kw))

    def rate(ccy, day_index):
        return Decimal(1) if ccy == "EUR" else fx[ccy][day_index][1]

    for ccy in CURRENCIES:
        add(date=days[0], kind="deposit", currency=ccy, amount=Decimal(2_000_000), fx_rate=rate(ccy, 0))
    # spread the remaining rows over the trading days, several per day on busy days
    slots = sorted(rng.randrange(len(days)) for _ in range(N_TXNS - len(txns)))
    for day_index in slots:
        day = days[day_index]
        iid = rng.randrange(1, N_INSTRUMENTS + 1)
        ccy = instruments[iid].currency
        px = prices[iid][day_index][1]
        roll = rng.random()
        if roll < 0.55 or held[iid] == 0:
            qty = rng.randint(1, 100)
            held[iid] += qty
            add(date=day, kind="buy", currency=ccy, instrument_id=iid, quantity=Decimal(qty),
                price=px, fees=Decimal("4.95"), fx_rate=rate(ccy, day_index))  # fmt: skip
        elif roll < 0.80:
            qty = rng.randint(1, held[iid])
            held[iid] -= qty
            add(date=day, kind="sell", currency=ccy, instrument_id=iid, quantity=Decimal(qty),
                price=px, fees=Decimal("4.95"), fx_rate=rate(ccy, day_index))  # fmt: skip
        elif roll < 0.93:
            add(date=day, kind="dividend", currency=ccy, instrument_id=iid,
                amount=Decimal(held[iid]) * Decimal("0.35"), fx_rate=rate(ccy, day_index))  # fmt: skip
        elif roll < 0.97:
            add(date=day, kind="fee", currency="EUR", amount=Decimal("25"))
        elif roll < 0.99:
            add(date=day, kind="deposit", currency="EUR", amount=Decimal(rng.randint(1, 50) * 1000))
        else:
            add(date=day, kind="withdrawal", currency="EUR", amount=Decimal(rng.randint(1, 20) * 1000))
    data = a.PortfolioData("EUR", txns, instruments=instruments, prices=prices, fx=fx)
    return data, benchmark


def run_once(data: a.PortfolioData, benchmark) -> tuple[float, float, float, a.Performance]:
    # a fresh copy so cached lots / sorted ledger are not reused between runs
    data = a.PortfolioData(data.base_currency, data.txns, data.instruments, data.prices, data.fx, data.lot_method)
    start, end = a.preset_range("SI", END, data.inception)
    t0 = time.perf_counter()
    perf = a.performance(data, start, end, benchmark_prices=benchmark)
    t1 = time.perf_counter()
    snapshot = a.holdings_on(data, end)
    for by in a.ALLOCATION_DIMENSIONS:
        a.allocation(data, end, by=by, snapshot=snapshot)
    t2 = time.perf_counter()
    a.value_series(data, start, end)
    t3 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, perf


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    t = time.perf_counter()
    data, benchmark = build()
    print(
        f"data: {len(data.txns)} txns, {len(data.prices)} instruments, "
        f"{sum(map(len, data.prices.values()))} closes, built in {(time.perf_counter() - t):.1f} s"
    )
    results = [run_once(data, benchmark) for _ in range(runs)]
    perf = results[-1][3]
    for label, k in (("performance", 0), ("allocation x4", 1), ("value_series", 2)):
        values = [r[k] for r in results]
        print(f"{label:>14}: median {statistics.median(values):7.1f} ms  best {min(values):7.1f} ms")
    totals = [r[0] + r[1] + r[2] for r in results]
    print(f"{'total':>14}: median {statistics.median(totals):7.1f} ms  best {min(totals):7.1f} ms")
    print(
        f"check: {len(perf.series.dates)} days, end value {perf.end_value:.2f} EUR, "
        f"TWR {perf.twr.value:.4%} p.a., MWR {perf.mwr.value:.4%} p.a., "
        f"max DD {perf.max_drawdown.depth:.2%}, vol {perf.volatility:.2%}"
    )


if __name__ == "__main__":
    main()
