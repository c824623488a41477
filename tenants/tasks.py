"""Platform jobs: the per-firm fan-out for Celery beat, the log-in help e-mail, the database backup.

Beat runs in one process and knows nothing of firms. A periodic job that works inside each firm is
scheduled as ``codex.for_each_firm`` with the firm task's name: it enqueues one task per firm that
is open for business (not suspended or closed), each carrying that firm's schema, so a slow or
failing firm never holds up the others and every firm's task retries on its own. (The task keeps
its registered name from when it lived in the kernel: beat schedules and queued messages name it.)

Example (settings.CELERY_BEAT_SCHEDULE)::

    "alerts-sweep": {"task": "codex.for_each_firm", "schedule": 300,
                     "kwargs": {"task": "alerts.evaluate_all"}},
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django_tenants.utils import schema_context

from codex.celery import app

from .models import Tenant, TenantStatus

logger = logging.getLogger(__name__)


@app.task(
    name="tenants.database_backup",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    max_retries=3,
    retry_backoff=True,
)
def database_backup(self) -> dict:
    """Celery beat, daily: dump the whole database and prune old dumps (tenants.db_backup)."""
    from .db_backup import database_backup as run_backup

    backup = run_backup()
    return {"path": str(backup.path), "size": backup.size}


@app.task(
    name="codex.for_each_firm",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def for_each_firm(self, task: str, kwargs: dict | None = None, include_past_due: bool = True) -> int:
    """Enqueue ``task`` once per open firm, in that firm's schema. Returns the number enqueued.

    Idempotent in effect as long as the firm task is (each is): a redelivered fan-out only queues
    the same per-firm work again.
    """
    statuses = [TenantStatus.TRIALING, TenantStatus.ACTIVE]
    if include_past_due:
        statuses.append(TenantStatus.PAST_DUE)
    app.loader.import_default_modules()  # a worker has them all; a shell or a test may not yet
    if task not in app.tasks:
        raise KeyError(f"unknown task {task!r}")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        schemas = list(Tenant.objects.filter(status__in=statuses).order_by("pk").values_list("schema_name", flat=True))
    for schema in schemas:
        app.send_task(task, kwargs=kwargs or {}, headers={"_schema_name": schema})
    logger.info("fan-out of %s to %d firms", task, len(schemas))
    return len(schemas)


@app.task(
    name="codex.find_firm_email",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    max_retries=5,
    retry_backoff=True,
)
def find_firm_email(self, email: str) -> int:
    """Log-in help: e-mail the address the firms it belongs to (tenants.find_firm)."""
    # function-level: find_firm queues this task: cycle listed in the acyclic contract
    from .find_firm import find_firm_send

    return find_firm_send(email=email)
