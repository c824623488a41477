from django.db import DatabaseError

from codex.db import current_schema as connection_schema

from .celery import app


@app.task(name="codex.current_schema")
def current_schema() -> str:
    """Report the schema the task ran in (used to prove tenant context reaches workers)."""
    return connection_schema()


@app.task(
    name="codex.history_purge",
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError,),
    max_retries=5,
    retry_backoff=True,
)
def history_purge_firm(self) -> dict:
    """Celery beat, once per firm (codex.for_each_firm) and once in the public schema: delete
    change-history events older than CODEX_HISTORY_RETENTION_DAYS in that schema
    (codex.history.history_purge)."""
    from .history import history_purge

    return {"schema": connection_schema(), "deleted": sum(history_purge().values())}
