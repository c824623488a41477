"""Background jobs of the fee business. Each runs in the schema of the firm that queued it."""

from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app


@app.task(
    name="fees.run_job", bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5
)
def fee_run_job(self, job_id: int) -> dict:
    """A fee run's preview or issue started on a page (decision 1201); its state is the
    ``FeeRunJob`` row, which the page shows. Safe to deliver twice: a job no longer queued is
    left alone. Retried only when the database fails before the job is claimed: once claimed, a
    failure is recorded on the job with nothing written (a retry then finds it no longer queued),
    and the owner starts it again."""
    from .services import fee_run_job_perform  # function-level: services queue this task on commit

    return fee_run_job_perform(job_id=job_id)


@app.task(
    name="fees.run_jobs_sweep",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def fee_run_jobs_sweep(self) -> dict:
    """Celery beat, once per firm: fee run jobs whose worker or task was lost for good end
    ``failed`` with the reason (decision 1220). Idempotent."""
    from codex.db import current_schema

    from .services import fee_run_jobs_sweep as sweep  # function-level: services queue this module's tasks

    return {"schema": current_schema(), "swept": sweep()}
