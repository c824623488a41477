"""The fee engine: plain calculations of advisory fees on assets (docs/fees.md).

Pure module: no ORM, no Django. Exact arithmetic (``fractions.Fraction``) throughout; a fee is
rounded once, to the currency's minor unit, with billing's ``round_half_up`` (billing.money), so a
fee run and a platform invoice round the same way.

Rules (each with a worked example in docs/fees.md and tests/fees/test_engine.py):

- **Tiered** (marginal): each slice of the billable value is charged its own tier's rate.
  **Blended**: the whole value is charged the rate of the tier the value reaches.
- Rates are basis points per year (1 bp = 0.01 %). A flat annual fee is added to the asset fee;
  the minimum and maximum bound the annual fee (flat included) before the period fraction.
- **Period fraction** (day count): ``actual/365`` charges ``days / 365`` of the annual fee;
  ``quarter`` charges exactly 1/4 (quarterly) or 1/12 (monthly) of it for a whole period, and
  ``days held / days in period`` of that for a part period (inception, termination).
- **Billable value**: average daily balance (arrears), period-end value (arrears) or the prior
  period's closing value (in advance).
- **Householding**: the group's fee is computed on the combined value and allocated back to the
  accounts by value, largest remainder first, so the account fees add up to the group fee exactly.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from billing.money import currency_exponent, round_half_up, to_fraction

BPS = Fraction(1, 10_000)


class FeeRuleError(ValueError):
    """Bad input to the engine; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Method(StrEnum):
    TIERED = "tiered"
    BLENDED = "blended"


class DayCount(StrEnum):
    ACTUAL_365 = "actual_365"
    QUARTER = "quarter"  # quarter = 1/4 year, month = 1/12 year


class Frequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


@dataclass(frozen=True, slots=True)
class Tier:
    """Rate in bps per year for the slice of value up to ``upto`` (None: no upper bound)."""

    upto: Decimal | None
    bps: Decimal


@dataclass(frozen=True, slots=True)
class Schedule:
    method: Method
    tiers: tuple[Tier, ...]
    flat_annual: Decimal = Decimal(0)
    minimum_annual: Decimal = Decimal(0)
    maximum_annual: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TierHit:
    """One tier used: the slice of value charged at ``bps`` and its annual fee (exact)."""

    lower: Decimal
    upper: Decimal | None
    bps: Decimal
    charged_value: Fraction
    annual_fee: Fraction


@dataclass(frozen=True, slots=True)
class FeeResult:
    billable_value: Fraction
    tiers_hit: tuple[TierHit, ...]
    asset_annual: Fraction  # from the tiers
    annual_before_bounds: Fraction  # asset + flat
    annual: Fraction  # after minimum and maximum
    minimum_applied: bool
    maximum_applied: bool
    fraction: Fraction  # part of the year charged
    days: int  # days billed
    period_days: int
    fee: Decimal  # rounded once

    @property
    def effective_bps(self) -> Fraction:
        """Annual fee over billable value, in bps (0 when nothing is billable)."""
        if self.billable_value == 0:
            return Fraction(0)
        return self.annual / self.billable_value / BPS


# --- validation ------------------------------------------------------------------------------------


def validate_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """Tiers ordered by strictly increasing upper bound, the last one open (``upto`` None), rates
    >= 0. Raises ``FeeRuleError`` naming ``tiers[i].upto`` or ``tiers[i].bps``."""
    if not tiers:
        raise FeeRuleError("tiers", "At least one tier is required.")
    previous = Fraction(0)
    for i, tier in enumerate(tiers):
        bps = to_fraction(tier.bps, name=f"tiers[{i}].bps")
        if bps < 0:
            raise FeeRuleError(f"tiers[{i}].bps", f"A rate cannot be negative (got {tier.bps}).")
        last = i == len(tiers) - 1
        if tier.upto is None:
            if not last:
                raise FeeRuleError(f"tiers[{i}].upto", "Only the last tier may be open-ended.")
            continue
        upto = to_fraction(tier.upto, name=f"tiers[{i}].upto")
        if upto <= previous:
            raise FeeRuleError(
                f"tiers[{i}].upto",
                f"Tiers must be in increasing order without overlap: {tier.upto} is not above {previous}.",
            )
        previous = upto
    if tiers[-1].upto is not None:
        raise FeeRuleError(f"tiers[{len(tiers) - 1}].upto", "The last tier must be open-ended (no upper bound).")
    return tuple(tiers)


def validate_schedule(schedule: Schedule) -> Schedule:
    validate_tiers(schedule.tiers)
    for name in ("flat_annual", "minimum_annual"):
        if to_fraction(getattr(schedule, name), name=name) < 0:
            raise FeeRuleError(name, "Cannot be negative.")
    if schedule.maximum_annual is not None:
        maximum = to_fraction(schedule.maximum_annual, name="maximum_annual")
        if maximum < 0:
            raise FeeRuleError("maximum_annual", "Cannot be negative.")
        if maximum < to_fraction(schedule.minimum_annual):
            raise FeeRuleError("maximum_annual", "The maximum cannot be below the minimum.")
    return schedule


def period_check(start: date, end: date, frequency: Frequency | str) -> None:
    """A period is a whole calendar month (monthly) or a whole calendar quarter (quarterly),
    ``end`` inclusive. Raises ``FeeRuleError`` naming ``period_start`` or ``period_end``."""
    frequency = Frequency(frequency)
    if start.day != 1:
        raise FeeRuleError("period_start", "A period starts on the first day of a month.")
    if frequency == Frequency.QUARTERLY and start.month not in (1, 4, 7, 10):
        raise FeeRuleError("period_start", "A quarter starts on 1 January, April, July or October.")
    months = 3 if frequency == Frequency.QUARTERLY else 1
    expected = period_end_of(start, months)
    if end != expected:
        what = "quarter" if months == 3 else "month"
        raise FeeRuleError("period_end", f"The period must be a whole {what}: it ends on {expected.isoformat()}.")


def period_end_of(start: date, months: int) -> date:
    year, month = start.year, start.month + months - 1
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def prior_period(start: date, frequency: Frequency | str) -> tuple[date, date]:
    months = 3 if Frequency(frequency) == Frequency.QUARTERLY else 1
    year, month = start.year, start.month - months
    if month < 1:
        year, month = year - 1, month + 12
    prior_start = date(year, month, 1)
    return prior_start, start - timedelta(days=1)


# --- calculations ----------------------------------------------------------------------------------


def asset_fee(value: Fraction | Decimal, schedule: Schedule) -> tuple[Fraction, tuple[TierHit, ...]]:
    """Annual asset fee on ``value`` and the tiers used (exact)."""
    value = Fraction(value)
    if value < 0:
        value = Fraction(0)  # an overdrawn account bills nothing, never a negative fee
    hits: list[TierHit] = []
    lower = Decimal(0)
    if schedule.method == Method.BLENDED:
        for tier in schedule.tiers:
            if tier.upto is None or value <= Fraction(tier.upto):
                rate = Fraction(tier.bps) * BPS
                hit = TierHit(lower, tier.upto, tier.bps, value, value * rate)
                return value * rate, (hit,)
            lower = tier.upto
        raise AssertionError("validated tiers end open")  # pragma: no cover
    total = Fraction(0)
    for tier in schedule.tiers:
        if value <= Fraction(lower):
            break
        top = value if tier.upto is None else min(value, Fraction(tier.upto))
        slice_ = top - Fraction(lower)
        fee = slice_ * Fraction(tier.bps) * BPS
        hits.append(TierHit(lower, tier.upto, tier.bps, slice_, fee))
        total += fee
        if tier.upto is None:
            break
        lower = tier.upto
    return total, tuple(hits)


def annual_fee(value: Fraction | Decimal, schedule: Schedule) -> tuple[Fraction, Fraction, bool, bool]:
    """``(annual before bounds, annual, minimum applied, maximum applied)``; flat fee included."""
    asset, _ = asset_fee(value, schedule)
    before = asset + Fraction(schedule.flat_annual)
    annual = before
    minimum_applied = maximum_applied = False
    if annual < Fraction(schedule.minimum_annual):
        annual, minimum_applied = Fraction(schedule.minimum_annual), True
    if schedule.maximum_annual is not None and annual > Fraction(schedule.maximum_annual):
        annual, maximum_applied = Fraction(schedule.maximum_annual), True
    return before, annual, minimum_applied, maximum_applied


def period_fraction(
    *,
    period_start: date,
    period_end: date,
    billed_from: date,
    billed_to: date,
    frequency: Frequency | str,
    day_count: DayCount | str,
) -> tuple[Fraction, int, int]:
    """The part of a year charged for days ``[billed_from, billed_to]`` of the period
    ``[period_start, period_end]``: ``(fraction, days billed, days in period)``."""
    if billed_from < period_start or billed_to > period_end:
        raise FeeRuleError("billed_from", "The billed days must lie inside the period.")
    period_days = (period_end - period_start).days + 1
    days = max(0, (billed_to - billed_from).days + 1)
    if DayCount(day_count) == DayCount.ACTUAL_365:
        return Fraction(days, 365), days, period_days
    per_period = Fraction(1, 4) if Frequency(frequency) == Frequency.QUARTERLY else Fraction(1, 12)
    return per_period * Fraction(days, period_days), days, period_days


def average_daily_balance(balances: Sequence[Decimal | Fraction]) -> Fraction:
    """Mean of the daily closing values (every calendar day counts, weekends carry Friday)."""
    if not balances:
        return Fraction(0)
    return sum((Fraction(b) for b in balances), Fraction(0)) / len(balances)


def fee_for(
    *,
    value: Fraction | Decimal,
    schedule: Schedule,
    period_start: date,
    period_end: date,
    billed_from: date,
    billed_to: date,
    frequency: Frequency | str,
    day_count: DayCount | str,
    currency: str,
) -> FeeResult:
    """The fee of one billing group for one period: annual fee on ``value``, bounded, times the
    period fraction, rounded once. The minimum and maximum are annual and pro-rated like the fee."""
    value = Fraction(value)
    before, annual, min_applied, max_applied = annual_fee(value, schedule)
    asset, hits = asset_fee(value, schedule)
    fraction, days, period_days = period_fraction(
        period_start=period_start,
        period_end=period_end,
        billed_from=billed_from,
        billed_to=billed_to,
        frequency=frequency,
        day_count=day_count,
    )
    fee = round_half_up(annual * fraction, currency_exponent(currency))
    return FeeResult(
        billable_value=value,
        tiers_hit=hits,
        asset_annual=asset,
        annual_before_bounds=before,
        annual=annual,
        minimum_applied=min_applied,
        maximum_applied=max_applied,
        fraction=fraction,
        days=days,
        period_days=period_days,
        fee=fee,
    )


def flat_fee_for(*, amount: Decimal, fraction_of_period: Fraction, currency: str) -> Decimal:
    """A product's flat fee per period, pro-rated by the part of the period held."""
    return round_half_up(Fraction(amount) * fraction_of_period, currency_exponent(currency))


def allocate(total: Decimal, weights: Sequence[Fraction | Decimal], *, currency: str) -> list[Decimal]:
    """Split ``total`` across accounts in proportion to ``weights`` (their billable values), in
    minor units, largest remainder first (ties to the earlier account): the parts add up to
    ``total`` exactly. All weights zero: equal shares."""
    exponent = currency_exponent(currency)
    unit = Fraction(1, 10**exponent)
    units_total = Fraction(total) / unit
    if units_total.denominator != 1:
        raise FeeRuleError("total", f"{total} is not a whole amount of {currency}.")
    ws = [max(Fraction(w), Fraction(0)) for w in weights]
    if not ws:
        return []
    weight_sum = sum(ws, Fraction(0))
    if weight_sum == 0:
        ws, weight_sum = [Fraction(1)] * len(ws), Fraction(len(ws))
    exact = [units_total * w / weight_sum for w in ws]
    floors = [e.numerator // e.denominator for e in exact]
    left = int(units_total) - sum(floors)
    order = sorted(range(len(ws)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [round_half_up(Fraction(units) * unit, exponent) for units in floors]


@dataclass(frozen=True, slots=True)
class Membership:
    """Days of the period a subscription is billed: inception and termination pro rata."""

    billed_from: date
    billed_to: date
    notes: list[str] = field(default_factory=list)


def billed_days(*, period_start: date, period_end: date, starts: date, ends: date | None) -> Membership | None:
    """The subscription's days inside the period, or None when it does not overlap it."""
    first = max(period_start, starts)
    last = period_end if ends is None else min(period_end, ends)
    if first > last:
        return None
    notes = []
    if first > period_start:
        notes.append(f"inception {first.isoformat()}")
    if last < period_end:
        notes.append(f"termination {last.isoformat()}")
    return Membership(first, last, notes)


@dataclass(frozen=True, slots=True)
class GrossNet:
    net: Fraction | None  # time-weighted, the fee a cost (it lowers the value)
    gross: Fraction | None  # time-weighted, the fee added back
    fees: Fraction  # advisory fees deducted over the range


def gross_and_net_twr(opening: Decimal, days: Sequence[tuple[Decimal, Decimal, Decimal]]) -> GrossNet:
    """Daily-linked time-weighted returns from the close before the range and, per day,
    ``(close, external flow, advisory fee deducted that day)``. Net: ``(V - F) / V_prev``, the fee
    is a cost like any other. Gross: ``(V - F + fee) / V_prev``, the fee added back as if it had
    never left. A day after a zero close starts the linking again (no capital, no return)."""
    net = gross = Fraction(1)
    linked = False
    prev = Fraction(opening)
    total_fees = Fraction(0)
    for value, flow, fee in days:
        v, f, fee_f = Fraction(value), Fraction(flow), Fraction(fee)
        total_fees += fee_f
        if prev > 0:
            net *= (v - f) / prev
            gross *= (v - f + fee_f) / prev
            linked = True
        prev = v
    if not linked:
        return GrossNet(None, None, total_fees)
    return GrossNet(net - 1, gross - 1, total_fees)
