"""Background jobs of the fee business. Each runs in the schema of the firm that queued it."""

from __future__ import annotations

from codex.celery import app


@app.task(name="fees.run_job", bind=True, acks_late=True)
def fee_run_job(self, job_id: int) -> dict:
    """A fee run's preview or issue started on a page (decision 1201); its state is the
    ``FeeRunJob`` row, which the page shows. Safe to deliver twice: a job no longer queued is
    left alone. Not retried: a failure is recorded on the job with nothing written, and the
    owner starts it again."""
    from .services import fee_run_job_perform  # function-level: services queue this task on commit

    return fee_run_job_perform(job_id=job_id)
