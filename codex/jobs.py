"""Cross-cutting background jobs: the worker-kill drill's task and the delivery ledger's sweep.

The per-firm fan-out for Celery beat (``codex.for_each_firm``) lists firms, so it lives with them
in ``tenants.tasks``."""

from __future__ import annotations

import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from redis.exceptions import RedisError

from .celery import app
from .delivery import ledger

logger = logging.getLogger(__name__)


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
