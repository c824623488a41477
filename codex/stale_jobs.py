"""The sweep of background jobs whose worker was lost: one kernel for the CSV imports (crm), the
ledger imports (portfolios) and the fee runs (fees) (decisions 1220, 1352).

Each of those jobs is a row with a ``heartbeat_at`` (set when it is queued and when a worker takes
it up), and its work holds the row's lock (``SELECT ... FOR UPDATE``) for as long as it runs. A
sweep (Celery beat, once per firm) ends every active job silent for ``IMPORT_JOB_STALE_SECONDS``
whose row no work holds: ``skip_locked`` passes over a live job however long it runs, and a late
delivery of the lost task then finds the job no longer active and does nothing. How a job ends,
what it says and whom it tells are the app's: this module holds what they share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from codex.db import current_schema
from codex.notifications.services import notification_send


@dataclass(frozen=True)
class StaleNotice:
    """The notification the member who started a swept job gets."""

    kind: str
    title: str
    url: str
    source: str


def silence(seen: datetime) -> str:
    """The words every swept job's reason shares."""
    return f"its background worker gave no sign of life after {seen:%Y-%m-%d %H:%M} UTC"


def stale_jobs_sweep(
    *,
    active: models.QuerySet,
    what: str,
    reason: Callable[[Any, datetime], str],
    end: Callable[[Any, str, datetime], None],
    log: logging.Logger,
    notice: Callable[[Any], StaleNotice] | None = None,
    log_extra: Callable[[Any], dict] | None = None,
    now: datetime | None = None,
) -> list[int]:
    """End the jobs of ``active`` (the queryset of jobs still queued or running, with what
    ``end``, ``reason`` and ``notice`` read joined in) silent since before
    ``now - IMPORT_JOB_STALE_SECONDS`` whose row no work holds locked.

    For each, in one transaction holding the swept rows: ``end(job, reason(job, last sign of
    life), now)`` records the end; an error line goes to ``log`` ("<what> <id> in schema <s>
    swept: ..."); and, with ``notice``, the member who started it (``created_by``, if still
    active) is notified. Returns the ids swept, oldest first. Idempotent: an ended job is no
    longer in ``active``."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IMPORT_JOB_STALE_SECONDS)
    schema = current_schema()
    swept = []
    with transaction.atomic():
        stale = active.select_for_update(skip_locked=True, of=("self",)).filter(heartbeat_at__lt=cutoff).order_by("pk")
        for job in stale:
            seen = job.heartbeat_at or cutoff  # never None here: the filter compared it
            why = reason(job, seen)
            end(job, why, now)
            swept.append(job.pk)
            log.error(
                "%s %s in schema %s swept: no sign of life since %s",
                what,
                job.pk,
                schema,
                seen.isoformat(),
                extra={"schema": schema, **(log_extra(job) if log_extra else {})},
            )
            starter = job.created_by
            if notice is not None and starter is not None and starter.is_active:
                note = notice(job)
                notification_send(
                    recipients=[starter], kind=note.kind, title=note.title, body=why, url=note.url, source=note.source
                )
    return swept
