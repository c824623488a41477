"""Background jobs of the CRM. Each runs in the schema of the firm that queued it."""

from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app
from codex.db import current_schema
from tenants.selectors import current_tenant


@app.task(bind=True, acks_late=True, autoretry_for=(OSError, DatabaseError), retry_backoff=True, max_retries=5)
def campaign_deliver(self, campaign_id: int) -> dict:
    """Mail a campaign's pending deliveries; safe to retry and to run twice (each row at most once)."""
    from .newsletter import services  # function-level: services queue these tasks: cycle listed in the acyclic contract

    return services.campaign_deliver(campaign_id=campaign_id, tenant=current_tenant())


@app.task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def campaigns_resume(self) -> dict:
    """Celery beat, once per firm (codex.for_each_firm): send again the campaigns whose delivery
    task is gone, e.g. a worker died (decision 0203). Never mails a row twice."""
    from .newsletter import services  # function-level: services queue these tasks: cycle listed in the acyclic contract

    return {"schema": current_schema(), "resumed": services.campaigns_resume()}


@app.task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def kyc_review_tasks(self) -> dict:
    """Celery beat, once per firm: a task for each contact whose KYC review is due (idempotent)."""
    from .suitability import kyc_review_tasks_open

    return {"schema": current_schema(), "tasks": kyc_review_tasks_open()}


@app.task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def import_commit_job(self, job_id: int, actor_id: int) -> dict:
    """The commit of a CSV import started on its page (decision 1001); its state is the job's
    status, which the page shows. Safe to deliver twice: a job no longer importing is left alone."""
    from .services import imports  # function-level: services queue this task: cycle listed in the acyclic contract

    return imports.import_commit_finish(job_id=job_id, actor_id=actor_id, tenant=current_tenant())


@app.task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def import_jobs_sweep(self) -> dict:
    """Celery beat, once per firm: imports whose background commit stopped for good go back to
    pending with the reason (decision 1220). Idempotent."""
    from .services import imports  # function-level: services queue these tasks: cycle listed in the acyclic contract

    return {"schema": current_schema(), "swept": imports.import_jobs_sweep()}
