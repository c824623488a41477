"""The alert state machine and conditions: pure functions, no ORM.

States: **armed** (waiting for the condition) and **disarmed** (fired, waiting for it to clear).

| state    | condition holds | condition clear | no observation |
|----------|-----------------|-----------------|----------------|
| armed    | fire, disarm    | stay armed      | no change      |
| disarmed | stay, no fire   | re-arm          | no change      |

So each crossing fires exactly once however often rules are evaluated, and a new crossing after the
condition cleared fires again.

Conditions (threshold ``t``):
- ``price_above``: latest close >= t;  ``price_below``: latest close <= t.
- ``daily_move_pct``: |latest close / previous close - 1| x 100 >= t (up or down).
- ``portfolio_drawdown_pct``: (peak - latest) / peak x 100 >= t, the peak being the highest value of
  the portfolio's time-weighted index up to the latest day (deposits and withdrawals are not losses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

HUNDRED = Decimal(100)
PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class Observation:
    on: date
    value: Decimal  # the close, the move in % (signed) or the drawdown in %


@dataclass(frozen=True)
class Step:
    fire: bool
    armed: bool


def transition(*, armed: bool, holds: bool | None) -> Step:
    if holds is None:
        return Step(fire=False, armed=armed)
    if armed and holds:
        return Step(fire=True, armed=False)
    if not armed and not holds:
        return Step(fire=False, armed=True)
    return Step(fire=False, armed=armed)


def condition_holds(kind: str, threshold: Decimal, value: Decimal) -> bool:
    if kind == "price_above":
        return value >= threshold
    if kind == "price_below":
        return value <= threshold
    if kind in ("daily_move_pct", "portfolio_drawdown_pct"):
        return abs(value) >= threshold
    raise ValueError(f"unknown alert kind {kind!r}")


def observe_closes(kind: str, closes: Sequence[tuple[date, Decimal]]) -> Observation | None:
    """From the newest-first closes of an instrument; None when there is not enough data."""
    if not closes:
        return None
    latest_day, latest = closes[0]
    if kind in ("price_above", "price_below"):
        return Observation(latest_day, latest)
    if kind == "daily_move_pct":
        if len(closes) < 2 or closes[1][1] <= 0:
            return None
        move = (latest / closes[1][1] - 1) * HUNDRED
        return Observation(latest_day, move.quantize(PLACES, ROUND_HALF_EVEN))
    raise ValueError(f"{kind!r} is not an instrument rule")


def observe_drawdown(index: Sequence[tuple[date, Decimal]]) -> Observation | None:
    """Current drawdown in % of an oldest-first value index (e.g. the portfolio's TWR index)."""
    peak = None
    for _day, value in index:
        if peak is None or value > peak:
            peak = value
    if not index or peak is None or peak <= 0:
        return None
    latest_day, latest = index[-1]
    return Observation(latest_day, ((peak - latest) / peak * HUNDRED).quantize(PLACES, ROUND_HALF_EVEN))


def describe(kind: str, subject: str, threshold: Decimal, observation: Observation) -> str:
    t = f"{threshold.normalize():f}"
    v = f"{observation.value.quantize(Decimal('0.01')):f}"
    on = observation.on.isoformat()
    if kind == "price_above":
        return f"{subject} closed at {v} on {on}, at or above {t}."
    if kind == "price_below":
        return f"{subject} closed at {v} on {on}, at or below {t}."
    if kind == "daily_move_pct":
        direction = "rose" if observation.value > 0 else "fell"
        return f"{subject} {direction} {abs(observation.value).quantize(Decimal('0.01'))}% on {on} (threshold {t}%)."
    return f"{subject} is {v}% below its peak on {on} (threshold {t}%)."
