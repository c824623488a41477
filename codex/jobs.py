"""Cross-cutting background jobs: per-firm fan-out for Celery beat, and the worker-kill drill's task.

Beat runs in one process and knows nothing of firms. A periodic job that works inside each firm is
scheduled as ``codex.for_each_firm`` with the firm task's name: it enqueues one task per firm that
is open for business (not suspended or closed), each carrying that firm's schema, so a slow or
failing firm never holds up the others and every firm's task retries on its own.

Example (settings.CELERY_BEAT_SCHEDULE)::

    "alerts-sweep": {"task": "codex.for_each_firm", "schedule": 300,
                     "kwargs": {"task": "alerts.evaluate_all"}},
"""

from __future__ import annotations

import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context
from redis.exceptions import RedisError

from .celery import app
from .delivery import ledger

logger = logging.getLogger(__name__)


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
    # function-level: Celery imports this module by name at worker start (codex.celery include),
    # before the app registry is ready
    from tenants.models import Tenant, TenantStatus

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


# --- Fault drill (bench/drill_worker_kill.py) ----------------------------------------------------
DRILL_EFFECT_TABLE = "ops_drill_effect"
DRILL_RUN_TABLE = "ops_drill_execution"


@app.task(
    name="codex.drill_write",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def drill_write(self, key: str, work_ms: int = 10) -> str:
    """Record one execution, "work", then write the effect keyed by ``key`` at most once.

    Tables are unqualified: they resolve in the firm schema the task was sent for, which proves the
    tenant context reached the worker. The execution row is committed first, so it counts attempts
    that a kill interrupts; the effect is an insert that a second delivery cannot repeat.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {DRILL_RUN_TABLE} (task_id, pid) VALUES (%s, %s)", [key, os.getpid()])
    time.sleep(work_ms / 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DRILL_EFFECT_TABLE} (task_id, schema_name) VALUES (%s, current_schema()) "
            "ON CONFLICT (task_id) DO NOTHING",
            [key],
        )
    return key


# --- Delivery ledger sweep (codex/delivery.py) ---------------------------------------------------
@app.task(
    name="codex.redeliver_lost",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, RedisError),
    retry_backoff=True,
    max_retries=5,
)
def redeliver_lost(self) -> int:
    """Re-send the tasks a Redis broker lost (beat, every minute). Returns how many were sent."""

    book = ledger()
    if book is None:
        return 0
    return len(book.redeliver_lost(grace=settings.DELIVERY_LEDGER_GRACE, app=app))
