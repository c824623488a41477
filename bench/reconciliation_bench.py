"""Reconciliation benchmark: 2,000 portfolios x 50 positions reconciled in one run (target < 20 s).

Run by hand, never in CI, on the test suite's database (the firm fixture; everything is rolled
back at the end):

    CODEX_REDIS_PORT=... .venv/bin/python -m pytest bench/reconciliation_bench.py -q -s -p no:randomly \
        [--portfolios 2000]

Load: 2,000 portfolios, each with a deposit and 50 buys (102,000 ledger rows) and a custodian file
of 50 positions and one cash line (102,000 lines); one position in twenty differs, so about 5,000
breaks are written. Timed: ``portfolios.custodian.reconcile`` (reading both sides, replaying every
ledger, writing the breaks), then a second, idempotent run.
"""

from __future__ import annotations

import os
import time
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from portfolios import custodian
from portfolios.market.models import Instrument, Price
from portfolios.models import CustodianPosition, Portfolio, ReconciliationBreak, Transaction

PORTFOLIOS = int(os.environ.get("BENCH_PORTFOLIOS", "2000"))
POSITIONS = 50
DAY = date(2025, 6, 30)


@pytest.mark.django_db
def test_reconcile_2000_portfolios_x_50_positions(firm, owner):
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with connection.cursor() as cursor:  # setup only: no change-history triggers on 200,000 inserts
        cursor.execute("SET session_replication_role = replica")
    instruments = Instrument.objects.bulk_create(
        [
            Instrument(symbol=f"RB{k}", exchange="XREC", name=f"Recon bench {k}", currency="USD")
            for k in range(POSITIONS)
        ]
    )
    Price.objects.bulk_create([Price(instrument=i, date=DAY, close=Decimal("100")) for i in instruments])
    portfolios = Portfolio.objects.bulk_create(
        [Portfolio(name=f"Recon {n}", advisor=owner, base_currency="USD") for n in range(PORTFOLIOS)]
    )
    txns, lines = [], []
    for n, p in enumerate(portfolios):
        txns.append(Transaction(portfolio=p, kind="deposit", trade_date=date(2025, 1, 2), amount=Decimal(1_000_000),
                                currency="USD", fingerprint=f"d{n}"))  # fmt: skip
        for k, inst in enumerate(instruments):
            qty = Decimal(10 + k)
            txns.append(Transaction(portfolio=p, kind="buy", trade_date=date(2025, 2, 3), instrument=inst,
                                    quantity=qty, price=Decimal(100), currency="USD",
                                    fingerprint=f"b{n}.{k}"))  # fmt: skip
            custodian_qty = qty + 1 if (n + k) % 20 == 0 else qty
            lines.append(CustodianPosition(portfolio=p, custodian="bench", as_of=DAY, instrument=inst,
                                           currency="USD", quantity=custodian_qty))  # fmt: skip
        cash = Decimal(1_000_000) - sum(Decimal(10 + k) * 100 for k in range(POSITIONS))
        lines.append(CustodianPosition(portfolio=p, custodian="bench", as_of=DAY, currency="USD", quantity=cash))
    Transaction.objects.bulk_create(txns, batch_size=10_000)
    CustodianPosition.objects.bulk_create(lines, batch_size=10_000)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = origin")
    print(
        f"\nsetup: {len(txns):,} ledger rows, {len(lines):,} custodian lines in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    result = custodian.reconcile(as_of=DAY, tolerance=Decimal(0))
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = custodian.reconcile(as_of=DAY, tolerance=Decimal(0))
    second = time.perf_counter() - started
    expected = sum(1 for n in range(PORTFOLIOS) for k in range(POSITIONS) if (n + k) % 20 == 0)
    print(
        f"reconcile: {result.portfolios:,} portfolios, {result.lines:,} lines, {result.breaks:,} breaks "
        f"in {first:.1f} s; "
        f"second run {second:.1f} s ({again.breaks:,} breaks); load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end"
    )
    assert result.portfolios == PORTFOLIOS and result.breaks == expected == again.breaks
    assert ReconciliationBreak.objects.filter(as_of=DAY).count() == expected
