"""Portfolio analytics through the database (run by hand, never in CI).

The brief's target: a portfolio with 10 years of daily prices, 50 instruments and 5,000
transactions; performance + allocation + value series together under 250 ms. The data are the
ones of ``bench/analytics_bench.py`` (``random.Random(42)``), written to PostgreSQL:

* 50 instruments (EUR, USD, GBP) and their weekday closes (130,450 rows) in the public schema,
  USD/EUR and GBP/EUR daily rates, a benchmark instrument;
* one EUR portfolio with 5,000 ledger rows in a firm's schema, holdings and lots rebuilt.

Each run then times, through the selectors and from a cold start (nothing cached):

* ``portfolio_analytics_bundle(preset="SI")``: load ledger, closes and rates (four queries), then
  ``performance`` + holdings + allocation by all four dimensions + the value series (the one
  ``performance`` made, as the portfolio page uses it);
* the same work as three separate API calls (performance, allocation, value-series), each
  loading its own data, for comparison;
* ``ledger_rebuild``: the cost every ledger write pays (replay 5,000 rows, rewrite holdings/lots).

Everything runs inside one transaction that is rolled back: the database is left as it was.

Usage: .venv/bin/python bench/portfolio_analytics.py [runs] [firm-slug]   (default 7, acme;
run ``manage.py seed_demo`` first so the firm exists)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from bench.analytics_bench import END, build, run_once  # noqa: E402
from portfolios import selectors, services  # noqa: E402
from portfolios.market.models import FxRate, Instrument  # noqa: E402
from portfolios.models import Portfolio, Transaction  # noqa: E402
from tenants.accounts.models import User  # noqa: E402
from tenants.models import Tenant  # noqa: E402


class Rollback(Exception):
    pass


def load(data, benchmark):
    """Write the generated instruments, closes, rates and ledger; return the portfolio."""
    ids = {}
    for iid, info in data.instruments.items():
        inst = Instrument.objects.create(
            symbol=f"BENCH{iid}",
            exchange="XBEN",
            name=f"Bench instrument {iid}",
            asset_class=info.asset_class,
            currency=info.currency,
            sector=info.sector,
            country=info.country,
        )
        ids[iid] = inst.pk
    bench = Instrument.objects.create(symbol="BENCHIDX", exchange="XBEN", name="Bench index", currency="EUR")
    with (
        connection.cursor() as cur,
        cur.cursor.copy("COPY market_price (instrument_id, date, close, source) FROM STDIN") as copy,
    ):
        for iid, series in data.prices.items():
            for d, px in series:
                copy.write_row((ids[iid], d, px, "bench"))
        for d, px in benchmark:
            copy.write_row((bench.pk, d, px, "bench"))
    FxRate.objects.bulk_create(
        [FxRate(base=ccy, quote="EUR", date=d, rate=r, source="bench") for ccy, s in data.fx.items() for d, r in s],
        batch_size=5000,
    )
    advisor = User.objects.filter(is_active=True).order_by("pk").first()
    portfolio = Portfolio.objects.create(
        name="Benchmark portfolio", advisor=advisor, base_currency="EUR", benchmark=bench
    )
    Transaction.objects.bulk_create(
        [
            Transaction(
                portfolio=portfolio,
                kind=t.kind,
                trade_date=t.date,
                instrument_id=ids.get(t.instrument_id),
                quantity=t.quantity,
                price=t.price,
                fees=t.fees,
                amount=t.amount,
                currency=t.currency,
                fx_rate=t.fx_rate,
                fingerprint="",
            )
            for t in data.sorted_txns
        ],
        batch_size=2000,
    )
    return portfolio


def vacuum_market_data() -> None:
    """Each run writes 130,000 closes and rolls them back: dead rows that every later index scan
    of the price table steps over until autovacuum comes. Vacuumed before and after, so a run
    measures the same table however many runs came before it (bundle medians of successive runs
    without it on a quiet machine: 233, 252, 248, 261 ms)."""
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) market_price, market_fxrate")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    slug = sys.argv[2] if len(sys.argv) > 2 else "acme"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        sys.exit(f"firm {slug!r} not found: run `manage.py seed_demo` first")
    t = time.perf_counter()
    data, benchmark = build()
    print(
        f"generated {len(data.txns)} txns, {sum(map(len, data.prices.values()))} closes "
        f"in {time.perf_counter() - t:.1f} s"
    )
    vacuum_market_data()
    try:
        with schema_context(tenant.schema_name), transaction.atomic():
            t = time.perf_counter()
            portfolio = load(data, benchmark)
            print(f"written to the database in {time.perf_counter() - t:.1f} s")
            with transaction.atomic():
                rebuild_first, _ = timed(lambda: services.ledger_rebuild(portfolio=portfolio))
            with connection.cursor() as cur:
                cur.execute("ANALYZE market_price; ANALYZE market_fxrate")
            bundle, bundle_cpu, separate, rebuild = [], [], [], [rebuild_first]
            perf = None
            for _ in range(runs):
                p = Portfolio.objects.get(pk=portfolio.pk)  # nothing cached between runs
                cpu0 = time.process_time()
                ms, (perf, allocs, series) = timed(
                    lambda p=p: selectors.portfolio_analytics_bundle(portfolio=p, preset="SI", today=END)
                )
                bundle_cpu.append((time.process_time() - cpu0) * 1000)
                bundle.append(ms)
                a, _ = timed(lambda p=p: selectors.portfolio_performance(portfolio=p, preset="SI", today=END))
                b, _ = timed(lambda p=p: selectors.portfolio_allocation(portfolio=p, by="sector", on=END))
                c, _ = timed(lambda p=p: selectors.portfolio_value_series(portfolio=p, preset="SI", today=END))
                separate.append((a, b, c))
                with transaction.atomic():
                    r, _ = timed(lambda p=p: services.ledger_rebuild(portfolio=p))
                rebuild.append(r)
            med = statistics.median
            print(
                "bundle (perf + allocation x4 + series, one load): "
                f"median {med(bundle):6.1f} ms  best {min(bundle):6.1f} ms"
            )
            print(
                "  of which CPU time of this process (excludes waiting for a core and the database's own "
                f"time): median {med(bundle_cpu):6.1f} ms  best {min(bundle_cpu):6.1f} ms"
            )
            for label, k in (("performance", 0), ("allocation", 1), ("value-series", 2)):
                values = [s[k] for s in separate]
                print(f"  separate {label:>12}: median {med(values):6.1f} ms  best {min(values):6.1f} ms")
            pure, pure_cpu = [], []
            for _ in range(runs):
                cpu0 = time.process_time()
                pure.append(run_once(data, benchmark))
                pure_cpu.append((time.process_time() - cpu0) * 1000)
            pure_totals = [r[0] + r[1] for r in pure]
            print(
                f"  control: pure analytics on the same data in memory (perf + allocation x4): "
                f"median {med(pure_totals):6.1f} ms  best {min(pure_totals):6.1f} ms "
                f"(CPU incl. its extra value_series: median {med(pure_cpu):6.1f} ms)"
            )
            totals = [sum(s) for s in separate]
            print(f"  separate total        : median {med(totals):6.1f} ms  best {min(totals):6.1f} ms")
            print(f"ledger_rebuild (5,000 rows): median {med(rebuild):6.1f} ms")
            print(
                f"check: {len(perf.series.dates)} days, end value {perf.end_value:.2f} EUR, "
                f"TWR {perf.twr.value:.4%} p.a., MWR {perf.mwr.value:.4%} p.a., buckets {len(allocs['sector'])}"
            )
            raise Rollback
    except Rollback:
        vacuum_market_data()
        print("rolled back: the database is unchanged")


if __name__ == "__main__":
    main()
