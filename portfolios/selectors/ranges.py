"""Date ranges from explicit dates or a preset (MTD, QTD, YTD, 1Y, 3Y, SI)."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import analytics
from .common import PRESETS


class NoTransactionsYet(ValidationError):
    """Returns and series of a portfolio with an empty ledger: nothing to measure yet (409 in the
    API: the portfolio's state, not the request, is what is missing)."""


def resolve_range(
    *, inception: date | None, start=None, end=None, preset: str | None = None, today: date | None = None
) -> tuple[date, date]:
    """``(start, end)`` from explicit dates or a preset (MTD, QTD, YTD, 1Y, 3Y, SI; default SI).

    Raises ``ValidationError`` naming ``start``, ``end`` or ``preset``."""
    today = today or timezone.localdate()
    errors = {}

    def parse(v, name):
        if v in (None, ""):
            return None
        if isinstance(v, date):
            return v
        try:
            return date.fromisoformat(str(v))
        except ValueError:
            errors[name] = "Enter a date as YYYY-MM-DD."
            return None

    s, e = parse(start, "start"), parse(end, "end")
    if preset and (s or e):
        errors["preset"] = "Give either a preset or start/end dates, not both."
    if errors:
        raise ValidationError(errors)
    if inception is None:
        raise NoTransactionsYet({"portfolio": "This portfolio has no transactions yet."})
    if s is None and e is None:
        p = (preset or "SI").upper()
        if p not in PRESETS:
            raise ValidationError({"preset": f"Choose one of {', '.join(PRESETS)}."})
        if inception > today:
            raise ValidationError({"portfolio": "The first transaction is after today."})
        return analytics.preset_range(p, today, inception)
    e = e or today
    s = s or inception
    if e > today:
        errors["end"] = "The end date is in the future."
    if s < analytics.EARLIEST_DATE:
        errors["start"] = f"The start date must be on or after {analytics.EARLIEST_DATE.isoformat()}."
    if e < analytics.EARLIEST_DATE:
        errors["end"] = f"The end date must be on or after {analytics.EARLIEST_DATE.isoformat()}."
    if s > e:
        errors["start"] = "The start date is after the end date."
    if errors:
        raise ValidationError(errors)
    return s, e
