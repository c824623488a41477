"""Valuation jobs. Each runs in the schema of the firm it was queued for (tenant-schemas-celery)."""

from __future__ import annotations

from datetime import date

from django.db import DatabaseError

from codex.celery import app

from . import valuation_services
from .models import Portfolio


@app.task(
    name="portfolios.valuations_rebuild",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError, valuation_services.ValuationRaced),
    retry_backoff=True,
    max_retries=5,
)
def valuations_rebuild_task(self, portfolio_id: int, since: str | None = None) -> dict:
    """Rebuild one portfolio's stored valuations from its pending ``stale_from`` (idempotent:
    a second delivery finds nothing pending and recomputes the same figures)."""
    portfolio = Portfolio.objects.filter(pk=portfolio_id).first()
    if portfolio is None:
        return {"portfolio": portfolio_id, "skipped": "deleted"}
    state = valuation_services.valuations_rebuild(
        portfolio=portfolio, since=date.fromisoformat(since) if since else None
    )
    return {"portfolio": portfolio_id, "status": state.status, "through": str(state.valued_through)}


@app.task(
    name="portfolios.valuations_market_data",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def valuations_market_data_task(
    self, since: str, instrument_ids: list | None = None, currencies: list | None = None
) -> dict:
    """After a price or FX import: mark this firm's affected portfolios stale from ``since`` and
    queue their rebuilds."""
    ids = valuation_services.valuations_for_market_data(
        instrument_ids=instrument_ids or (), currencies=currencies or (), since=date.fromisoformat(since)
    )
    return {"portfolios": len(ids)}


@app.task(
    name="portfolios.valuations_extend",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def valuations_extend_task(self) -> dict:
    """Nightly, per firm: value every portfolio through today (the days since its last valuation)."""
    return {"portfolios": len(valuation_services.valuations_extend_all())}


@app.task(
    name="portfolios.ledger_import",
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def ledger_import_job(self, import_id: int, actor_id: int) -> dict:
    """The commit of a transactions CSV started on the import page (decision 1001); its state is
    the ``LedgerImport`` row, which the page shows. Safe to deliver twice."""
    from .imports import ledger_import_finish  # function-level: the import queues this task on commit

    return ledger_import_finish(import_id=import_id, actor_id=actor_id)


@app.task(
    name="portfolios.ledger_imports_sweep",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def ledger_imports_sweep_task(self) -> dict:
    """Celery beat, once per firm: transactions imports whose background commit stopped for good
    end refused with the reason (decision 1220). Idempotent."""
    from .imports import ledger_imports_sweep  # function-level: the import queues this module's tasks

    return {"swept": ledger_imports_sweep()}
