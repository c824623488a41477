"""Feed runs: fetch from the providers, check, store through the importer, report, audit, alert.

What a run guarantees (docs/market-data.md, "Feeds"):

- **Gap filling.** Each instrument (or currency) is fetched from the day after its last stored
  value (or ``initial_days`` back when it has none) to ``end``: after an outage the next run
  catches up; when nothing is missing no call is made.
- **Idempotent.** A value equal to what is stored is *unchanged*; running twice writes once.
- **Never overwrites.** A stored value that differs (a manual correction, another provider) is a
  conflict in the report and is kept, unless ``overwrite`` (``--overwrite``; audited).
- **Nothing wrong is stored.** Per instrument and day, a value that fails the checks of
  ``base.checked_quotes`` (garbage, 0, a 100x jump, an unknown or wrong currency) is left out and
  reported; a failed call leaves that instrument out; the other instruments are stored.
- **Reported.** One ``FeedRun`` row per run with a per-instrument report, an audit event, and an
  e-mail to ``MARKET_FEEDS_ALERT_EMAILS`` when anything failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from tenants.services import audit_record

from ..models import SHARED, CorporateAction, FeedRun, FeedRunStatus, FxRate, Instrument, Price, ProviderCall
from ..services import PRICE_PLACES, RATE_PLACES, ImportRejected, prices_import_rows
from .alphavantage import AlphaVantageProvider
from .base import CallsRecorded, FetchResult, FxProvider, PriceProvider, checked_quotes, known_currencies
from .ecb import EcbProvider
from .http import FeedError
from .stooq import StooqProvider

logger = logging.getLogger(__name__)


def _options() -> dict:
    return settings.MARKET_FEEDS


def price_providers(names: Sequence[str] | None = None) -> list[PriceProvider]:
    """The price providers named in ``MARKET_PRICE_PROVIDERS`` (in order), those configured."""
    registry: dict[str, type[PriceProvider]] = {"stooq": StooqProvider, "alphavantage": AlphaVantageProvider}
    out = []
    for name in names or _options()["price_providers"]:
        if name not in registry:
            raise ValueError(f"unknown price provider {name!r}; known: {', '.join(registry)}")
        provider = registry[name]()
        if getattr(provider, "configured", True):
            out.append(provider)
    return out


def fx_provider() -> FxProvider:
    return EcbProvider()


def _serialise(name: str) -> None:
    """One run of a kind at a time (beat and a command at once): the second waits, then finds
    nothing missing. Released at the end of the run's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"codex.market.{name}"])


def _entry(key: str, label: str) -> dict:
    return {"key": key, "label": label, "written": 0, "unchanged": 0, "conflicts": [], "rejected": [], "error": ""}


def _stored(model_filter: dict, model, value_field: str, start: date, end: date) -> dict[date, Decimal]:
    rows = model.objects.filter(**model_filter, date__gte=start, date__lte=end).values_list("date", value_field)
    return dict(rows)


def _before(model, model_filter: dict, value_field: str, start: date) -> Decimal | None:
    """The last stored value before the window: the reference of the jump check."""
    row = model.objects.filter(**model_filter, date__lt=start).order_by("-date").values_list(value_field)[:1]
    return row[0][0] if row else None


def _split_new(
    accepted: list[tuple[date, Decimal]], stored: dict[date, Decimal], entry: dict, *, overwrite: bool
) -> list[tuple[date, Decimal]]:
    """What to write: days not stored, and (with ``overwrite``) days stored with another value."""
    out = []
    for day, value in accepted:
        old = stored.get(day)
        if old is None:
            out.append((day, value))
        elif old == value:
            entry["unchanged"] += 1
        elif overwrite:
            out.append((day, value))
        else:
            entry["conflicts"].append(
                {"date": day.isoformat(), "reason": f"stored {old.normalize():f}, feed says {value.normalize():f}"}
            )
    return out


def _calls_store(run: FeedRun, providers: Sequence[CallsRecorded]) -> int:
    """Store every call the providers made during the run (one ``ProviderCall`` row each)."""
    rows = [
        ProviderCall(
            run=run,
            provider=provider.name,
            actor=run.actor or "system",
            subject=call.subject[:64],
            url=call.url[:2000],
            started_at=call.started_at,
            status=call.status,
            latency_ms=call.latency_ms,
            rows=call.rows,
            error=call.error[:500],
        )
        for provider in providers
        for call in provider.drain_calls()
    ]
    ProviderCall.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _finish(run: FeedRun, entries: list[dict], providers: Sequence[CallsRecorded]) -> FeedRun:
    calls = _calls_store(run, providers)
    run.report = entries
    run.written = sum(e["written"] for e in entries)
    run.unchanged = sum(e["unchanged"] for e in entries)
    run.failures = sum(1 for e in entries if e["error"] or e["rejected"])
    if run.error or (entries and run.failures == len(entries)):
        run.status = FeedRunStatus.FAILED
    elif run.failures:
        run.status = FeedRunStatus.PARTIAL
    else:
        run.status = FeedRunStatus.OK
    run.finished_at = timezone.now()
    run.save()
    audit_record(
        action=f"market.feed_{run.kind}",
        actor=run.actor or "system",
        target=run.provider,
        details={
            "run": run.pk,
            "status": run.status,
            "written": run.written,
            "unchanged": run.unchanged,
            "failures": run.failures,
            "calls": calls,
            "error": run.error[:500],
        },
    )
    if run.status != FeedRunStatus.OK:
        transaction.on_commit(lambda: feed_failure_notify(run=run))
    return run


def feed_failure_notify(*, run: FeedRun) -> None:
    """E-mail the operators a failed or partial run (``MARKET_FEEDS_ALERT_EMAILS``)."""
    recipients = settings.MARKET_FEEDS_ALERT_EMAILS
    if not recipients:
        logger.warning("market feed %s run %s: %s (no alert e-mail configured)", run.provider, run.pk, run.status)
        return
    lines = [f"{run.provider} {run.kind} run {run.pk}: {run.get_status_display()}", ""]
    if run.error:
        lines.append(f"Run error: {run.error}")
    for entry in run.report:
        problems = [entry["error"]] if entry["error"] else []
        problems += [f"{r['date']}: {r['reason']}" for r in entry["rejected"]]
        if problems:
            lines.append(f"{entry['label']}: " + "; ".join(problems))
    send_mail(
        subject=f"[Codex] market feed {run.provider}: {run.get_status_display().lower()}",
        message="\n".join(lines),
        from_email=None,
        recipient_list=list(recipients),
    )


def _window(last: date | None, *, since: date | None, end: date) -> date:
    if since is not None:
        return since
    if last is not None:
        return last + timedelta(days=1)
    return end - timedelta(days=_options()["initial_days"])


@transaction.atomic
def prices_fetch(
    *,
    providers: Sequence[PriceProvider],
    instruments: Sequence[Instrument] | None = None,
    end: date | None = None,
    since: date | None = None,
    overwrite: bool = False,
    actor: str = "",
) -> FeedRun:
    """Fetch daily closes of the shared, active instruments (or ``instruments``) and store them.

    ``providers`` are tried in order per instrument: the next one only when a call failed (not
    when a value was refused by the checks). Atomic: the run row, the prices and the audit event
    commit together; the alert e-mail is sent after commit."""
    _serialise("prices")
    end = end or timezone.localdate()
    today = timezone.localdate()
    if instruments is None:
        instruments = list(Instrument.all_objects.filter(owner=SHARED, is_active=True).order_by("symbol", "exchange"))
    run = FeedRun.objects.create(
        provider="+".join(p.name for p in providers), kind="prices", actor=actor, overwrite=overwrite
    )
    ids = [i.pk for i in instruments]
    last_dates = dict(
        Price.objects.filter(instrument_id__in=ids)
        .values("instrument_id")
        .annotate(d=Max("date"))
        .values_list("instrument_id", "d")
    )
    max_jump = Decimal(str(_options()["max_jump"]))
    entries, rows, written_by = [], [], []
    for instrument in instruments:
        entry = _entry(str(instrument.pk), str(instrument))
        entries.append(entry)
        start = _window(last_dates.get(instrument.pk), since=since, end=end)
        if start > end:
            continue
        result, used = FetchResult(error="no provider configured"), None
        errors = []
        for provider in providers:
            result, used = provider.fetch_prices(instrument, start, end), provider
            if not result.error:
                break
            errors.append(result.error)
        if result.error:
            entry["error"] = "; ".join(errors)
            continue
        previous = _before(Price, {"instrument_id": instrument.pk}, "close", start)
        accepted, rejected = checked_quotes(
            result.quotes,
            expected_currency=instrument.currency,
            previous=previous,
            today=today,
            max_jump=max_jump,
            places=PRICE_PLACES,
        )
        entry["rejected"] = [r.__dict__ for r in rejected]
        entry["provider"] = used.name if used else ""
        stored = _stored({"instrument_id": instrument.pk}, Price, "close", start, end)
        for day, close in _split_new(accepted, stored, entry, overwrite=overwrite):
            rows.append(
                {
                    "symbol": instrument.symbol,
                    "exchange": instrument.exchange,
                    "date": day.isoformat(),
                    "close": str(close),
                    "source": used.name if used else "",
                }
            )
            written_by.append(entry)
        _actions_record(instrument, result, source=used.name if used else "")
    _store(run, rows, written_by, kind="prices", overwrite=overwrite, actor=actor)
    return _finish(run, entries, providers)


def _store(run: FeedRun, rows: list[dict], written_by: list[dict], *, kind: str, overwrite: bool, actor: str) -> None:
    """One import for the whole run (one ``prices_imported`` signal: one valuation/alert sweep)."""
    if not rows:
        return
    by_source: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_source.setdefault(row.pop("source", run.provider) or run.provider, []).append(index)
    try:
        for source, indexes in by_source.items():
            prices_import_rows(
                rows=[(n, rows[n]) for n in indexes],
                kind=kind,
                overwrite=overwrite,
                actor=actor or f"feed {run.provider}",
                source=source,
                filename=f"feed run {run.pk}",
            )
    except ImportRejected as exc:
        # Only a concurrent writer of the same keys gets here (conflicts were split off above).
        run.error = f"nothing stored: {exc}"
        for entry in written_by:
            entry["error"] = entry["error"] or "not stored (the run's import was rejected)"
        return
    for entry in written_by:
        entry["written"] += 1


def _actions_record(instrument: Instrument, result: FetchResult, *, source: str) -> None:
    for kind, day, value in result.actions:
        CorporateAction.objects.get_or_create(
            instrument=instrument, kind=kind, date=day, defaults={"value": value, "source": source}
        )


@transaction.atomic
def fx_fetch(
    *,
    provider: FxProvider,
    end: date | None = None,
    since: date | None = None,
    overwrite: bool = False,
    actor: str = "",
) -> FeedRun:
    """Fetch the provider's reference rates (``base``/each currency) and store them. Same
    guarantees as ``prices_fetch``; a failed call fails the whole run (one file for all)."""
    _serialise("fx")
    end = end or timezone.localdate()
    today = timezone.localdate()
    run = FeedRun.objects.create(provider=provider.name, kind="fx", actor=actor, overwrite=overwrite)
    last_dates = dict(
        FxRate.objects.filter(base=provider.base).values("quote").annotate(d=Max("date")).values_list("quote", "d")
    )
    start = _window(min(last_dates.values()) if last_dates else None, since=since, end=end)
    if since is None and last_dates and max(last_dates.values()) < start:
        start = max(last_dates.values()) + timedelta(days=1)
    entries: list[dict] = []
    if start > end:
        return _finish(run, entries, [provider])
    try:
        answer = provider.fetch_rates(start, end)
    except FeedError as exc:
        run.error = str(exc)
        return _finish(run, entries, [provider])
    max_jump = Decimal(str(_options()["max_jump"]))
    rows, written_by = [], []
    for currency in sorted(answer):
        result = answer[currency]
        entry = _entry(currency, f"{provider.base}/{currency}")
        entries.append(entry)
        own_start = start if since is not None else _window(last_dates.get(currency), since=None, end=end)
        quotes = [q for q in result.quotes if q.date >= own_start]
        accepted, rejected = checked_quotes(
            quotes,
            expected_currency="",
            previous=_before(FxRate, {"base": provider.base, "quote": currency}, "rate", own_start),
            today=today,
            max_jump=max_jump,
            places=RATE_PLACES,
        )
        if currency not in known_currencies() or currency == provider.base:
            entry["error"] = f"unknown currency “{currency}”: nothing stored for it"
            continue
        entry["rejected"] = [r.__dict__ for r in rejected]
        stored = _stored({"base": provider.base, "quote": currency}, FxRate, "rate", own_start, end)
        for day, rate in _split_new(accepted, stored, entry, overwrite=overwrite):
            rows.append({"base": provider.base, "quote": currency, "date": day.isoformat(), "rate": str(rate)})
            written_by.append(entry)
    _store(run, rows, written_by, kind="fx", overwrite=overwrite, actor=actor)
    return _finish(run, entries, [provider])
