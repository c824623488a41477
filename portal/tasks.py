"""Background jobs of the portal. Each runs in the schema of the firm that queued it."""

from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app
from tenants.selectors import current_tenant


@app.task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def report_run(self, run_id: int) -> dict:
    """A batch of quarterly reports; its progress is on the ReportRun row."""
    from . import services  # function-level: services queue this task: cycle listed in the acyclic contract

    run = services.report_run_execute(run_id=run_id, tenant=current_tenant())
    return {"run": run.pk, "done": run.done, "failed": run.failed}
