from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app

from . import checks, services


@app.task(name=checks.CHECK_TASK, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=2)
def record_checks() -> int:
    """Every minute (beat): this worker is alive; check every service and store the results."""
    checks.mark_worker_alive()
    return len(services.status_record())
