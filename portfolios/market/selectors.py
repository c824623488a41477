"""Market data reads. Pure functions of the database state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DateField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .models import SHARED, FeedRun, FeedRunStatus, FxRate, Instrument, Price


def stale_thresholds(today: date | None = None) -> tuple[date, date]:
    """A close older than these dates is stale: (shared instruments, firm instruments)."""
    today = today or timezone.localdate()
    return (
        today - timedelta(days=settings.MARKET_STALE_AFTER_DAYS),
        today - timedelta(days=settings.MARKET_FIRM_STALE_AFTER_DAYS),
    )


def instrument_list() -> QuerySet[Instrument]:
    """Instruments this schema sees (shared + the firm's own) with their latest close, its date,
    and ``stale_since`` (that date, when older than expected; also set when there is no close at
    all, to the instrument's creation day). Two correlated subqueries, one query."""
    latest = Price.objects.filter(instrument=OuterRef("pk")).order_by("-date")
    shared_before, firm_before = stale_thresholds()
    return Instrument.objects.annotate(
        last_close=Subquery(latest.values("close")[:1]), last_date=Subquery(latest.values("date")[:1])
    ).annotate(
        stale_since=Case(
            When(Q(last_date__isnull=True, is_active=True), then=F("created_at__date")),
            When(Q(owner=SHARED, is_active=True, last_date__lt=shared_before), then=F("last_date")),
            When(Q(is_active=True, last_date__lt=firm_before) & ~Q(owner=SHARED), then=F("last_date")),
            default=Value(None),
            output_field=DateField(),
        )
    )


def feed_runs_for_firm() -> QuerySet[FeedRun]:
    return FeedRun.objects.order_by("-started_at", "-id")


def price_series(*, instrument: Instrument, start: date | None = None, end: date | None = None) -> QuerySet[Price]:
    prices = Price.objects.filter(instrument=instrument).order_by("date")
    if start:
        prices = prices.filter(date__gte=start)
    if end:
        prices = prices.filter(date__lte=end)
    return prices


def latest_closes(*, instrument_ids, count: int = 2) -> dict[int, list[tuple[date, Decimal]]]:
    """The last ``count`` closes (newest first) of each instrument, in one query."""

    ranked = (
        Price.objects.filter(instrument_id__in=list(instrument_ids))
        .annotate(rank=Window(RowNumber(), partition_by=[F("instrument_id")], order_by=F("date").desc()))
        .filter(rank__lte=count)
        .order_by("instrument_id", "-date")
        .values_list("instrument_id", "date", "close")
    )
    closes: dict[int, list[tuple[date, Decimal]]] = {}
    for instrument_id, day, close in ranked:
        closes.setdefault(instrument_id, []).append((day, close))
    return closes


def fx_rate_list() -> QuerySet[FxRate]:
    return FxRate.objects.order_by("base", "quote", "-date")


@dataclass(frozen=True)
class FeedHealth:
    """The feeds as a whole: the latest run of each provider and kind, how many shared instruments
    have no recent close, and a verdict (``ok``, ``degraded``, ``down``) with the reasons."""

    latest: list[FeedRun]
    stale_instruments: int
    state: str
    problems: list[str]

    @property
    def detail(self) -> str:
        if self.problems:
            return "; ".join(self.problems)
        if not self.latest:
            return "no feed has run yet"
        return ", ".join(f"{run.provider} {run.kind}: {run.status}" for run in self.latest)


def latest_feed_runs() -> list[FeedRun]:
    """The latest run of each provider and kind (one query, the ``provider, -started_at`` index)."""
    return list(
        FeedRun.objects.order_by("provider", "kind", "-started_at", "-id").distinct("provider", "kind").defer("report")
    )


def feed_health(*, now: datetime | None = None) -> FeedHealth:
    """Platform-wide feed health (public tables; two queries).

    ``down`` when a provider's latest run failed; ``degraded`` when one partly failed, is overdue
    (no run for ``MARKET_FEEDS_OVERDUE_HOURS``) or is still running past that, or when active shared
    instruments have no close since ``MARKET_STALE_AFTER_DAYS``. Before any feed has run (a
    platform that loads files only) the feeds are ``ok`` with nothing to judge."""
    now = now or timezone.now()
    latest = latest_feed_runs()
    if not latest:
        return FeedHealth(latest=[], stale_instruments=0, state="ok", problems=[])
    shared_before, _firm = stale_thresholds(timezone.localdate(now))
    recent = Price.objects.filter(instrument=OuterRef("pk"), date__gte=shared_before)
    stale = Instrument.all_objects.filter(owner=SHARED, is_active=True).filter(~Exists(recent)).count()
    overdue = now - timedelta(hours=settings.MARKET_FEEDS_OVERDUE_HOURS)
    problems: list[str] = []
    state = "ok"
    for run in latest:
        label = f"{run.provider} {run.kind}"
        if run.status == FeedRunStatus.FAILED:
            state = "down"
            problems.append(f"{label}: last run failed ({run.error[:120] or 'every instrument failed'})")
        elif run.status == FeedRunStatus.PARTIAL:
            problems.append(f"{label}: last run partly failed ({run.failures} with problems)")
        if run.started_at < overdue:
            problems.append(f"{label}: no run since {run.started_at:%Y-%m-%d %H:%M} UTC")
    if stale:
        problems.append(f"{stale} shared instrument(s) without a close since {shared_before:%Y-%m-%d}")
    if problems and state == "ok":
        state = "degraded"
    return FeedHealth(latest=latest, stale_instruments=stale, state=state, problems=problems)


def feed_health_check() -> tuple[str, str]:
    """The platform status check (``codex.status.checks.register``): ``(state, detail)``."""
    health = feed_health()
    return health.state, health.detail
