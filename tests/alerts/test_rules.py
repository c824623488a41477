"""The pure state machine and conditions (no database)."""

from datetime import date
from decimal import Decimal as D

import pytest

from portfolios.alerts.rules import (
    Observation,
    condition_holds,
    describe,
    observe_closes,
    observe_drawdown,
    transition,
)


@pytest.mark.parametrize(
    ("armed", "holds", "fire", "armed_after"),
    [
        (True, True, True, False),  # crossing: fire once, disarm
        (True, False, False, True),  # waiting
        (False, True, False, False),  # still beyond the threshold: no second firing
        (False, False, False, True),  # cleared: re-arm
        (True, None, False, True),  # no data: no change
        (False, None, False, False),
    ],
)
def test_transition_table(armed, holds, fire, armed_after):
    step = transition(armed=armed, holds=holds)
    assert (step.fire, step.armed) == (fire, armed_after)


def test_a_sequence_fires_once_per_crossing():
    armed, fired = True, []
    for close in [90, 99, 100, 105, 110, 99, 98, 101, 101]:
        step = transition(armed=armed, holds=condition_holds("price_above", D(100), D(close)))
        armed = step.armed
        fired.append(step.fire)
    assert fired == [False, False, True, False, False, False, False, True, False]


@pytest.mark.parametrize(
    ("kind", "threshold", "value", "holds"),
    [
        ("price_above", D(100), D(100), True),
        ("price_above", D(100), D("99.99"), False),
        ("price_below", D(100), D(100), True),
        ("price_below", D(100), D("100.01"), False),
        ("daily_move_pct", D(5), D("-5.2"), True),
        ("daily_move_pct", D(5), D("4.99"), False),
        ("portfolio_drawdown_pct", D(10), D("10"), True),
        ("portfolio_drawdown_pct", D(10), D("9.5"), False),
    ],
)
def test_conditions(kind, threshold, value, holds):
    assert condition_holds(kind, threshold, value) is holds


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        condition_holds("moon_phase", D(1), D(1))


def test_daily_move_is_from_the_previous_close():
    closes = [(date(2026, 1, 6), D("94.5")), (date(2026, 1, 5), D("100"))]
    assert observe_closes("daily_move_pct", closes) == Observation(date(2026, 1, 6), D("-5.500000"))
    assert observe_closes("daily_move_pct", closes[:1]) is None
    assert observe_closes("price_above", closes) == Observation(date(2026, 1, 6), D("94.5"))
    assert observe_closes("price_below", []) is None


def test_drawdown_from_the_running_peak():
    index = [(date(2026, 1, d), D(v)) for d, v in [(1, "1.0"), (2, "1.2"), (3, "0.9"), (4, "1.08")]]
    assert observe_drawdown(index) == Observation(date(2026, 1, 4), D("10.000000"))  # (1.2 - 1.08) / 1.2
    assert observe_drawdown([]) is None


def test_messages_say_what_happened():
    obs = Observation(date(2026, 1, 6), D("-5.5"))
    assert describe("daily_move_pct", "AAPL", D(5), obs) == "AAPL fell 5.50% on 2026-01-06 (threshold 5%)."
    assert describe("price_above", "AAPL", D(100), Observation(date(2026, 1, 6), D("101"))) == (
        "AAPL closed at 101.00 on 2026-01-06, at or above 100."
    )
