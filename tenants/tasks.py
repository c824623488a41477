"""Platform jobs (public schema)."""

from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app


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
