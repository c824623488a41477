"""Dunning schedule of an unpaid invoice: which reminder to send, when to go past due or suspend.

Pure module: no Django import, no clock: ``now`` is an argument, so a periodic task and the tests
drive it the same way. Rules (docs/billing.md, "Dunning schedule"):

- Times are counted from the invoice's due moment ``due_at`` in its own time zone: "3 days after" is
  the same wall-clock time three calendar days later, whatever DST does in between.
- From ``due_at`` on, the firm is ``past_due``; from ``due_at + grace_period_days`` on,
  ``suspended``.
- Reminder ``n`` (an offset in days, ``0 <= n < grace``) becomes due at ``due_at + n days``.
  Each is sent at most once: the caller passes the offsets already sent (or superseded) and
  records what it does.
- Catch-up without spam: if the task did not run for a while and several reminders are due and
  unsent, only the latest is sent; the earlier ones are returned as superseded so the caller
  records them and they never go out late. Once the firm is suspended, the suspension notice
  replaces every reminder.
- Paying is outside this function: the payment service reactivates the firm and stops evaluating the
  invoice. With several unpaid invoices, the oldest due date drives the firm's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class DunningStatus(StrEnum):
    CURRENT = "current"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class DunningPolicy:
    """Reminder offsets in days after the due date (stored sorted); grace days before suspension."""

    reminder_offsets_days: tuple[int, ...] = (1, 3, 7)
    grace_period_days: int = 14

    def __post_init__(self) -> None:
        offsets = tuple(self.reminder_offsets_days)
        if not _is_int(self.grace_period_days) or self.grace_period_days < 0:
            raise ValueError("grace_period_days must be an int >= 0")
        if not all(_is_int(n) for n in offsets):
            raise ValueError("reminder offsets must be ints (days)")
        if len(set(offsets)) != len(offsets):
            raise ValueError(f"duplicate reminder offsets: {offsets}")
        # A reminder on or after the suspension day would never be sent: the suspension notice
        # supersedes it. Refuse such a policy instead of silently dropping the reminder.
        bad = [n for n in offsets if not 0 <= n < self.grace_period_days]
        if bad:
            raise ValueError(f"reminder offsets must be >= 0 and < grace_period_days ({self.grace_period_days}): {bad}")
        # Kept sorted, so equal policies compare equal and callers can rely on the order.
        object.__setattr__(self, "reminder_offsets_days", tuple(sorted(offsets)))


@dataclass(frozen=True, slots=True)
class DunningDecision:
    status: DunningStatus
    reminders_to_send: tuple[int, ...]
    """Offsets to send now: empty or exactly one (the latest due and unsent)."""
    reminders_superseded: tuple[int, ...]
    """Due, unsent offsets that must never be sent: record them as handled."""
    days_overdue: int
    """Whole days elapsed since the due moment (0 before it and during the first day)."""
    suspend_at: datetime
    next_check_at: datetime | None
    """Earliest future moment at which the decision changes, or None once suspended."""

    @property
    def past_due(self) -> bool:
        return self.status is DunningStatus.PAST_DUE

    @property
    def suspend(self) -> bool:
        return self.status is DunningStatus.SUSPENDED


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _days_after(due_at: datetime, days: int) -> datetime:
    # Aware + timedelta is wall-clock arithmetic in due_at's zone: the same local time `days` later.
    return due_at + timedelta(days=days)


def _reached(moment: datetime, now: datetime) -> bool:
    # Compare instants: aware datetimes sharing a tzinfo compare by wall clock (wrong around DST).
    return moment.astimezone(UTC) <= now.astimezone(UTC)


def _days_overdue(due_at: datetime, now: datetime) -> int:
    if not _reached(due_at, now):
        return 0
    days = max(0, (now.astimezone(due_at.tzinfo).date() - due_at.date()).days)
    while days > 0 and not _reached(_days_after(due_at, days), now):
        days -= 1
    while _reached(_days_after(due_at, days + 1), now):
        days += 1
    return days


def dunning_decide(
    *,
    due_at: datetime,
    now: datetime,
    sent: Iterable[int] = (),
    policy: DunningPolicy | None = None,
) -> DunningDecision:
    """What dunning should do now for an invoice due at ``due_at`` and still unpaid.

    ``sent`` holds the reminder offsets already sent or superseded; offsets not in the policy
    (the policy changed since) are ignored. Idempotent: calling it again after recording its
    answer returns no reminder until the next one falls due.
    """
    _require_aware(due_at, "due_at")
    _require_aware(now, "now")
    policy = policy or DunningPolicy()
    already = frozenset(sent)

    suspend_at = _days_after(due_at, policy.grace_period_days)
    due_unsent = [n for n in policy.reminder_offsets_days if n not in already and _reached(_days_after(due_at, n), now)]

    if _reached(suspend_at, now):
        status = DunningStatus.SUSPENDED
        to_send: tuple[int, ...] = ()
        superseded = tuple(due_unsent)
    elif _reached(due_at, now):
        status = DunningStatus.PAST_DUE
        to_send = tuple(due_unsent[-1:])
        superseded = tuple(due_unsent[:-1])
    else:
        status = DunningStatus.CURRENT
        to_send, superseded = (), ()

    future = [
        moment
        for moment in (
            due_at,
            suspend_at,
            *(_days_after(due_at, n) for n in policy.reminder_offsets_days if n not in already),
        )
        if not _reached(moment, now)
    ]
    next_check_at = min(future, key=lambda m: m.astimezone(UTC)) if future else None

    return DunningDecision(
        status=status,
        reminders_to_send=to_send,
        reminders_superseded=superseded,
        days_overdue=_days_overdue(due_at, now),
        suspend_at=suspend_at,
        next_check_at=next_check_at,
    )
