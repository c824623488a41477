"""Periodic billing work (Celery beat, see CELERY_BEAT_SCHEDULE). Every task runs in the public
schema, is idempotent, and is safe to run twice at once (row locks and unique constraints in the
services; metering uses atomic GETDEL / upserts)."""

from __future__ import annotations

from dataclasses import asdict

from django.db import DatabaseError

from codex.celery import app

from . import metering, services


@app.task(
    name="billing.usage_flush",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def usage_flush(self) -> int:
    return metering.usage_flush()


@app.task(
    name="billing.invoice_run",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def invoice_run(self) -> dict:
    return asdict(services.invoice_run())


@app.task(
    name="billing.dunning_run",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def dunning_run(self) -> dict:
    return asdict(services.dunning_run())


@app.task(
    name="billing.usage_snapshot",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def usage_snapshot(self) -> int:
    return services.usage_snapshot()
