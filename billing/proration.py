"""Billing periods and proration of plan changes, to the second.

Pure module: no Django import. All datetimes must be timezone-aware.
Rules (docs/billing.md, "Proration"):

- A period is the half-open interval ``[start, end)``. Periods repeat from a billing anchor by
  calendar months (monthly) or years (yearly), each computed from the anchor, not from the
  previous period, so an anchor on the 31st gives Jan 31 -> Feb 28/29 -> Mar 31 (clamped to the
  month's end, then back).
- Time is counted in whole Unix seconds, like Stripe: the change moment is truncated to its second,
  and period lengths are real elapsed seconds (a DST change makes a day 23 or 25 hours long).
- Same interval: credit = -old * remaining/period, charge = new * remaining/period, each
  rounded once to the currency's minor unit (ROUND_HALF_UP, halves away from zero);
  net = credit + charge. The subscription keeps its anchor and current period.
- Interval switch (monthly <-> yearly), as Stripe does: credit the unused part of the old period as
  above, charge the full new amount, and restart the billing anchor at the change moment, so
  the new period is ``[at, at + new interval)``. The net can be negative (a yearly -> monthly
  switch early in the year); the caller turns a negative net into a credit balance, never
  silently into a cash refund.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from billing.money import currency_exponent, round_half_up, to_fraction


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"

    @property
    def months(self) -> int:
        return 12 if self is Interval.YEAR else 1


class ProrationError(ValueError):
    """The inputs do not describe a valid change (e.g. change moment outside the period)."""


@dataclass(frozen=True, slots=True)
class ProrationResult:
    credit: Decimal
    """Credit for the unused part of the old plan: zero or negative."""
    charge: Decimal
    """Charge for the new plan: the rest of the period, or a full period on an interval switch."""
    net: Decimal
    """credit + charge: positive means the customer owes money now."""
    remaining_seconds: int
    """Seconds of the old period left after the change moment."""
    period_seconds: int
    """Length of the old period in seconds."""
    new_period_start: datetime
    new_period_end: datetime
    """The period after the change (unchanged unless the interval switched)."""


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _unix(value: datetime) -> int:
    """Whole Unix seconds of an aware datetime (sub-second part truncated)."""
    return calendar.timegm(value.astimezone(UTC).timetuple())


def _interval(value: Interval | str) -> Interval:
    try:
        return Interval(value)
    except ValueError:
        raise ValueError(f"unknown interval {value!r}; expected 'month' or 'year'") from None


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole calendar months in its own time zone, day clamped to month end.

    The wall-clock time of day is kept (09:00 Europe/Paris stays 09:00 across DST changes).
    """
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_bounds(anchor: datetime, interval: Interval | str, at: datetime) -> tuple[datetime, datetime]:
    """The billing period ``[start, end)`` containing ``at``, for periods repeating from ``anchor``.

    Period ``k`` starts at ``add_months(anchor, k * months)`` (months = 1 or 12), so an anchor of
    Jan 31 gives periods starting Jan 31, Feb 28 (Feb 29 in a leap year), Mar 31, Apr 30, ...;
    a yearly anchor on Feb 29 gives Feb 28 in common years. ``at`` before the anchor gives the
    earlier periods of the same sequence. Returned datetimes are in the anchor's time zone.
    """
    _require_aware(anchor, "anchor")
    _require_aware(at, "at")
    step = _interval(interval).months
    at_instant = at.astimezone(UTC)
    local_at = at.astimezone(anchor.tzinfo)

    # First guess from the calendar, then correct by at most one step either way (clamped days and
    # times of day before the anchor's make the guess off by one).
    k = ((local_at.year - anchor.year) * 12 + local_at.month - anchor.month) // step
    while add_months(anchor, k * step).astimezone(UTC) > at_instant:
        k -= 1
    while add_months(anchor, (k + 1) * step).astimezone(UTC) <= at_instant:
        k += 1
    return add_months(anchor, k * step), add_months(anchor, (k + 1) * step)


def prorate(
    *,
    old_amount: Decimal | int,
    new_amount: Decimal | int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
    currency: str,
) -> ProrationResult:
    """Proration of a change between two plans of the same interval, at ``at`` within the period.

    credit = -old * remaining/period and charge = new * remaining/period, each computed exactly and
    rounded once to the currency's minor unit. ``at`` may equal ``period_start`` (full swap:
    net = new - old) or ``period_end`` (nothing left: all zero).
    Raises ``TypeError`` (float amounts, non-datetimes), ``ValueError`` (naive datetimes, negative
    amounts, unknown currency) and ``ProrationError`` (empty period, ``at`` outside it).
    """
    for name, value in (("period_start", period_start), ("period_end", period_end), ("at", at)):
        _require_aware(value, name)
    exponent = currency_exponent(currency)
    old = to_fraction(old_amount, name="old_amount")
    new = to_fraction(new_amount, name="new_amount")
    if old < 0 or new < 0:
        raise ValueError("plan amounts must be >= 0")

    start, end, moment = _unix(period_start), _unix(period_end), _unix(at)
    period_seconds = end - start
    if period_seconds <= 0:
        raise ProrationError(f"empty period: {period_start.isoformat()} to {period_end.isoformat()}")
    if not start <= moment <= end:
        raise ProrationError(
            f"change moment {at.isoformat()} is outside the period "
            f"{period_start.isoformat()} to {period_end.isoformat()}"
        )
    remaining_seconds = end - moment
    unused = Fraction(remaining_seconds, period_seconds)

    credit = round_half_up(-old * unused, exponent)
    charge = round_half_up(new * unused, exponent)
    return ProrationResult(
        credit=credit,
        charge=charge,
        net=round_half_up(Fraction(credit) + Fraction(charge), exponent),
        remaining_seconds=remaining_seconds,
        period_seconds=period_seconds,
        new_period_start=period_start,
        new_period_end=period_end,
    )


def prorate_plan_change(
    *,
    old_amount: Decimal | int,
    old_interval: Interval | str,
    new_amount: Decimal | int,
    new_interval: Interval | str,
    anchor: datetime,
    at: datetime,
    currency: str,
) -> ProrationResult:
    """Proration of a plan change at ``at`` for a subscription billed from ``anchor``.

    Same interval: ``prorate`` over the current period; the anchor and period are kept.
    Interval switch: credit for the unused part of the current old period, charge for the full new
    amount, new period ``[at, at + new interval)`` (``at`` truncated to the second) and the anchor
    restarts at ``at``: read it from ``result.new_period_start``.
    """
    old_iv, new_iv = _interval(old_interval), _interval(new_interval)
    _require_aware(at, "at")
    period_start, period_end = period_bounds(anchor, old_iv, at)
    same_interval = prorate(
        old_amount=old_amount,
        new_amount=new_amount,
        period_start=period_start,
        period_end=period_end,
        at=at,
        currency=currency,
    )
    if old_iv is new_iv:
        return same_interval

    exponent = currency_exponent(currency)
    charge = round_half_up(to_fraction(new_amount, name="new_amount"), exponent)
    credit = same_interval.credit
    new_start = at - timedelta(microseconds=at.microsecond)
    return ProrationResult(
        credit=credit,
        charge=charge,
        net=round_half_up(Fraction(credit) + Fraction(charge), exponent),
        remaining_seconds=same_interval.remaining_seconds,
        period_seconds=same_interval.period_seconds,
        new_period_start=new_start,
        new_period_end=add_months(new_start, new_iv.months),
    )
