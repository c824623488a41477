"""The scaling curve's own arithmetic (bench/pages.py --scaling) and the big ledger's span
(bench/seed_bench.py): what decides "flat" and what the sizes vary."""

import random
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bench.pages import spread, verdict
from bench.seed_bench import ledger_rows


def test_spread_is_max_over_min_when_every_size_was_measured():
    assert spread([10.0, 15.0, 20.0], 3) == 2.0
    assert spread([10.0, 20.0], 3) is None  # a size missing: no verdict from two points
    assert spread([0.0, 5.0, 5.0], 3) is None


@pytest.mark.parametrize(
    ("p95", "cost", "expected"),
    [
        (1.5, 1.9, "flat"),
        (2.0, 2.0, "flat"),
        (2.5, 3.0, "NOT flat"),
        (2.4, 1.2, "flat in process, not served"),
        (1.1, 10.0, "flat served, not in process"),
        (None, 1.5, "flat"),
        (None, None, "-"),
    ],
)
def test_verdict_needs_both_the_served_and_the_in_process_figures_within_2x(p95, cost, expected):
    assert verdict(p95, cost) == expected


def _market(days: int):
    first = date(2016, 1, 4)
    all_days = [first + timedelta(days=i) for i in range(days)]
    instruments = [SimpleNamespace(pk=i, currency="USD") for i in range(3)]
    closes = {(inst.pk, d): Decimal("100") for inst in instruments for d in all_days}
    return instruments, closes, all_days


def test_the_big_ledger_spans_the_whole_history_at_every_length():
    instruments, closes, days = _market(2000)
    for count in (50, 500, 5000):
        rows = ledger_rows(random.Random(8), None, count, instruments, closes, days, whole_span=True)
        assert len(rows) == count
        assert rows[0]["trade_date"] == days[0]
        assert (days[-1] - rows[-1]["trade_date"]).days <= len(days) // count + 1


def test_a_small_ledger_stays_on_the_last_days():
    instruments, closes, days = _market(2000)
    rows = ledger_rows(random.Random(8), None, 5, instruments, closes, days)
    assert [r["trade_date"] for r in rows] == days[-5:]
