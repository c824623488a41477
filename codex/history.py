"""Change history of business records, written by database triggers (django-pghistory).

Each tracked model (``@pghistory.track`` in its app) has an event table in the same schema: a row
per insert, update and delete, a full snapshot of the record's fields, the time, and a link to the
context of the change (``pghistory.Context``: who, which request). The event tables are append-only
(``PGHISTORY_APPEND_ONLY``: a trigger refuses UPDATE and DELETE); only ``history_purge`` removes
events older than the retention period, by name of the trigger it steps over.

This module reads that history: per record (``object_history``, a field-by-field before/after) and
per firm over a date range (``firm_trail``, for the owner's CSV export).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pghistory
import pgtrigger
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from pghistory.middleware import HistoryMiddleware as PghistoryMiddleware
from pghistory.models import Event

from .db import current_firm_pk, current_schema
from .observability import request_id_var

# Columns of an event row that are pghistory's, not the record's.
_EVENT_COLUMNS = {"pgh_id", "pgh_created_at", "pgh_label", "pgh_obj", "pgh_context", "pgh_context_id", "pgh_obj_id"}


class HistoryMiddleware(PghistoryMiddleware):
    """pghistory's middleware, adding the request id and, in a support session, the operator.
    The API key of an API request is added by ``ApiKeyAuthentication`` (DRF authenticates in the
    view); a user signed in by session or bearer token is recorded by pghistory itself."""

    def get_context(self, request):
        context = super().get_context(request)
        context["request_id"] = request_id_var.get() or None
        support = getattr(request, "support_session", None)
        if support:
            context["support_operator"] = support["operator"]
        return context


def history_context(**metadata) -> None:
    """Add metadata (e.g. ``api_key``) to the current change context, if one is open."""
    pghistory.context(**metadata)


@dataclass
class HistoryEntry:
    at: datetime
    action: str  # insert, update, delete
    changes: dict[str, tuple[object, object]]  # field -> (before, after)
    user_id: int | None
    api_key: str | None
    request_id: str | None
    metadata: dict = field(default_factory=dict)

    @property
    def who(self) -> str:
        if self.api_key:
            return f"API key {self.api_key}"
        if self.metadata.get("support_operator"):
            return f"operator {self.metadata['support_operator']}"
        if self.user_id:
            return f"user {self.user_id}"
        return "system"


def _record_fields(event_model) -> list[str]:
    return [f.attname for f in event_model._meta.concrete_fields if f.name not in _EVENT_COLUMNS]


def _context_is_copied(event_model) -> bool:
    """Whether the event rows hold their context themselves (public records, decision 0931)
    rather than a link to a context row (firm records)."""
    return not event_model._meta.get_field("pgh_context").is_relation


def _metadata(event) -> dict:
    context = event.pgh_context
    if isinstance(context, dict) or context is None:
        return context or {}
    return context.metadata or {}


def _events(event_model, **filters):
    events = event_model.objects.filter(**filters)
    return events if _context_is_copied(event_model) else events.select_related("pgh_context")


def _entries(events: Iterable, names: list[str]) -> Iterator[HistoryEntry]:
    previous = None
    for event in events:
        metadata = _metadata(event)
        now = {name: getattr(event, name) for name in names}
        changes: dict[str, tuple[object, object]]
        if event.pgh_label == "insert" or previous is None:
            changes = {name: (None, value) for name, value in now.items() if value not in (None, "", [], {})}
        elif event.pgh_label == "delete":
            changes = {name: (value, None) for name, value in now.items() if value not in (None, "", [], {})}
        else:
            changes = {name: (previous[name], value) for name, value in now.items() if previous[name] != value}
        yield HistoryEntry(
            at=event.pgh_created_at,
            action=event.pgh_label,
            changes=changes,
            user_id=metadata.get("user"),
            api_key=metadata.get("api_key"),
            request_id=metadata.get("request_id"),
            metadata=metadata,
        )
        previous = now


def event_model_of(model):
    """The event model pghistory made for ``model`` (``<Model>Event``)."""
    return apps.get_model(model._meta.app_label, f"{model.__name__}Event")


def object_history(*, obj) -> list[HistoryEntry]:
    """Every change of ``obj``, oldest first, each with the fields it changed (before, after).
    The caller has checked that the user may see ``obj``."""
    event_model = event_model_of(type(obj))
    events = _events(event_model, pgh_obj_id=obj.pk).order_by("pgh_id")
    return list(_entries(events, _record_fields(event_model)))


def object_history_events(*, obj) -> QuerySet:
    """The event rows of ``obj``, to filter, sort and page (``history_entries`` turns a page of them
    into entries). Each row carries ``previous_id``: the record's event just before it, whatever the
    filter, so that a page's first change still shows its "before". The caller has checked access."""
    event_model = event_model_of(type(obj))
    previous = (
        event_model.objects.filter(pgh_obj_id=obj.pk, pgh_id__lt=OuterRef("pgh_id"))
        .order_by("-pgh_id")
        .values("pgh_id")[:1]
    )
    return _events(event_model, pgh_obj_id=obj.pk).annotate(previous_id=Subquery(previous))


def history_entries(events: Iterable, *, obj) -> list[HistoryEntry]:
    """The entries of ``events`` (rows of ``object_history_events``, in their order), each compared
    with the record's event before it. One query for all the predecessors, whatever the page size."""
    events = list(events)
    event_model = event_model_of(type(obj))
    names = _record_fields(event_model)
    wanted = {event.previous_id for event in events if event.previous_id is not None}
    before = (
        {row.pop("pgh_id"): row for row in event_model.objects.filter(pgh_id__in=wanted).values("pgh_id", *names)}
        if wanted
        else {}
    )
    out = []
    for event in events:
        previous = before.get(event.previous_id)
        now = {name: getattr(event, name) for name in names}
        changes: dict[str, tuple[object, object]]
        if event.pgh_label == "insert" or previous is None:
            changes = {name: (None, value) for name, value in now.items() if value not in (None, "", [], {})}
        elif event.pgh_label == "delete":
            changes = {name: (value, None) for name, value in now.items() if value not in (None, "", [], {})}
        else:
            changes = {name: (previous[name], value) for name, value in now.items() if previous[name] != value}
        metadata = _metadata(event)
        out.append(
            HistoryEntry(
                at=event.pgh_created_at,
                action=event.pgh_label,
                changes=changes,
                user_id=metadata.get("user"),
                api_key=metadata.get("api_key"),
                request_id=metadata.get("request_id"),
                metadata=metadata,
            )
        )
    return out


def _event_models() -> list[Any]:
    # pghistory makes the event models at start-up: their fields (pgh_obj, the tracked columns) are
    # not known to the type checker.
    return [
        model
        for model in apps.get_models()
        if issubclass(model, Event) and not model._meta.proxy and model._meta.managed
    ]


def tracked_event_models() -> list[Any]:
    """Event models whose tables live in a firm's schema (firm apps)."""
    return [model for model in _event_models() if model._meta.app_config.name in settings.TENANT_APPS]


def public_event_models() -> list[Any]:
    """Event models of records in the public schema (shared apps only: subscriptions, invoices,
    the firm's own settings, plans, operators' accounts are an app in both and counted above)."""
    return [
        model
        for model in _event_models()
        if model._meta.app_config.name in settings.SHARED_APPS
        and model._meta.app_config.name not in settings.TENANT_APPS
    ]


def firm_public_event_models() -> list[tuple[Any, str]]:
    """Public event models whose records belong to one firm, with the lookup that names it
    (``history_firm_lookup`` on the tracked model, ``codex.history_tracking``)."""
    found = []
    for model in public_event_models():
        lookup = getattr(model.pgh_tracked_model, "history_firm_lookup", None)
        if lookup:
            found.append((model, lookup))
    return found


TRAIL_COLUMNS = [
    "at",
    "record_type",
    "record_id",
    "action",
    "field",
    "before",
    "after",
    "user_id",
    "api_key",
    "request_id",
]


def firm_trail(*, start: datetime, end: datetime) -> Iterator[list]:
    """The firm's changes between ``start`` (inclusive) and ``end`` (exclusive), one row per
    changed field, ordered by record type, record and time. Reads the current schema's records,
    then the firm's own records in the public schema (subscription, invoices, settings)."""
    # A firm's request or job has the firm on the connection (a bare schema_context has no pk).
    firm_pk = current_firm_pk()
    sources: list[tuple[Any, dict]] = [(model, {}) for model in tracked_event_models()]
    if firm_pk is not None:
        sources += [(model, {lookup: firm_pk}) for model, lookup in firm_public_event_models()]
    for event_model, of_firm in sources:
        names = _record_fields(event_model)
        label = event_model.pgh_tracked_model._meta.label
        # Earlier events of the same records give the "before" of the first change in the range.
        in_range = event_model.objects.filter(pgh_created_at__gte=start, pgh_created_at__lt=end, **of_firm)
        object_ids = in_range.values("pgh_obj_id")
        events = _events(event_model, pgh_obj_id__in=object_ids, pgh_created_at__lt=end).order_by(
            "pgh_obj_id", "pgh_id"
        )
        by_object: dict = {}
        for event in events:
            by_object.setdefault(event.pgh_obj_id, []).append(event)
        for object_id, object_events in by_object.items():
            for entry in _entries(object_events, names):
                if entry.at < start:
                    continue
                for name, (before, after) in entry.changes.items():
                    yield [
                        entry.at.isoformat(),
                        label,
                        object_id,
                        entry.action,
                        name,
                        "" if before is None else before,
                        "" if after is None else after,
                        entry.user_id or "",
                        entry.api_key or "",
                        entry.request_id or "",
                    ]


def firm_trail_csv(*, start: datetime, end: datetime) -> Iterator[str]:
    """``firm_trail`` as CSV lines (a header first), for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TRAIL_COLUMNS)
    for row in firm_trail(start=start, end=end):
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def history_purge(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete the current schema's events older than ``CODEX_HISTORY_RETENTION_DAYS``; returns the
    count per event model. In a firm's schema: the firm apps' events; in the public schema: the
    shared apps' (subscriptions, invoices, firms' settings, operators). Atomic. The append-only
    trigger is stepped over by name, for these deletes only (``pgtrigger.ignore``); every other
    UPDATE or DELETE of an event still fails."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CODEX_HISTORY_RETENTION_DAYS)
    counts: dict[str, int] = {}
    in_public = current_schema() == settings.PUBLIC_SCHEMA_NAME
    event_models = (
        [m for m in _event_models() if m._meta.app_config.name in settings.SHARED_APPS]
        if in_public
        else tracked_event_models()
    )
    with transaction.atomic():
        for event_model in event_models:
            old = event_model.objects.filter(pgh_created_at__lt=cutoff)
            if dry_run:
                counts[event_model._meta.label] = old.count()
                continue
            with pgtrigger.ignore(f"{event_model._meta.label}:append_only"):
                counts[event_model._meta.label] = old.delete()[0]
    return counts
