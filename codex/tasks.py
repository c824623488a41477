from django.db import connection

from .celery import app


@app.task(name="codex.current_schema")
def current_schema() -> str:
    """Report the schema the task ran in (used to prove tenant context reaches workers)."""
    return connection.schema_name
