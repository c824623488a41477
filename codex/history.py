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
from django.utils import timezone
from pghistory.middleware import HistoryMiddleware as PghistoryMiddleware
from pghistory.models import Event

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


def _entries(events: Iterable, names: list[str]) -> Iterator[HistoryEntry]:
    previous = None
    for event in events:
        metadata = (event.pgh_context.metadata if event.pgh_context_id else None) or {}
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
    events = event_model.objects.filter(pgh_obj_id=obj.pk).select_related("pgh_context").order_by("pgh_id")
    return list(_entries(events, _record_fields(event_model)))


def tracked_event_models() -> list[Any]:
    """Event models whose tables live in a firm's schema (firm apps)."""
    # pghistory makes the event models at start-up: their fields (pgh_obj, the tracked columns) are
    # not known to the type checker.
    return [
        model
        for model in apps.get_models()
        if issubclass(model, Event)
        and model._meta.app_config.name in settings.TENANT_APPS
        and not model._meta.proxy
        and model._meta.managed
    ]


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
    changed field, ordered by record type, record and time. Reads the current schema."""
    for event_model in tracked_event_models():
        names = _record_fields(event_model)
        label = event_model.pgh_tracked_model._meta.label
        # Earlier events of the same records give the "before" of the first change in the range.
        in_range = event_model.objects.filter(pgh_created_at__gte=start, pgh_created_at__lt=end)
        object_ids = in_range.values("pgh_obj_id")
        events = (
            event_model.objects.filter(pgh_obj_id__in=object_ids, pgh_created_at__lt=end)
            .select_related("pgh_context")
            .order_by("pgh_obj_id", "pgh_id")
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
    count per event model. Atomic. The append-only trigger is stepped over by name, for these
    deletes only (``pgtrigger.ignore``); every other UPDATE or DELETE of an event still fails."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CODEX_HISTORY_RETENTION_DAYS)
    counts: dict[str, int] = {}
    with transaction.atomic():
        for event_model in tracked_event_models():
            old = event_model.objects.filter(pgh_created_at__lt=cutoff)
            if dry_run:
                counts[event_model._meta.label] = old.count()
                continue
            with pgtrigger.ignore(f"{event_model._meta.label}:append_only"):
                counts[event_model._meta.label] = old.delete()[0]
    return counts
