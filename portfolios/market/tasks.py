"""Market-data feed jobs (Celery beat, CELERY_BEAT_SCHEDULE). They run in the public schema, are
idempotent (a second run finds nothing missing) and serialised by an advisory lock in the service."""

from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app

from .feeds import runs


@app.task(
    name="portfolios.market.fx_fetch", bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True
)
def fx_fetch_task(self) -> dict:
    run = runs.fx_fetch(provider=runs.fx_provider(), actor="beat")
    return {"run": run.pk, "status": run.status, "written": run.written}


@app.task(
    name="portfolios.market.prices_fetch", bind=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True
)
def prices_fetch_task(self) -> dict:
    run = runs.prices_fetch(providers=runs.price_providers(), actor="beat")
    return {"run": run.pk, "status": run.status, "written": run.written}
