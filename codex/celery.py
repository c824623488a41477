"""Celery app with tenant context: every task carries the schema it was sent from and runs in it.

tenant-schemas-celery switches the schema in a ``task_prerun`` signal; Celery logs and swallows
errors raised by signal handlers, so if the firm cannot be looked up (database down, firm deleted)
the task would silently run in the public schema. ``CodexTask`` switches again itself and, if the
firm still cannot be reached, retries the task later; it never runs a task in another schema.
"""

import os

from tenant_schemas_celery.app import CeleryApp, get_schema_name_from_task
from tenant_schemas_celery.task import TenantTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")


class WrongSchema(RuntimeError):
    pass


class CodexTask(TenantTask):
    abstract = True
    # Retries of a task that could not be put in its firm's schema (see __call__).
    schema_retry_limit = 5

    def __call__(self, *args, **kwargs):
        # function-level: the Celery app is created before Django is set up
        from django.db import DatabaseError, close_old_connections, connection

        wanted = get_schema_name_from_task(self, kwargs) or "public"
        if not self.request.is_eager and connection.schema_name != wanted:
            # The prerun switch failed (its error was swallowed). Try once more here, on a fresh
            # connection; if the firm still cannot be reached, retry the task later rather than
            # run it in the wrong schema or drop it.
            try:
                close_old_connections()
                if wanted == "public":
                    connection.set_schema_to_public()
                else:
                    connection.set_tenant(self.get_tenant_for_schema(schema_name=wanted), include_public=True)
            except DatabaseError as exc:
                problem = WrongSchema(f"task {self.name} could not switch to schema {wanted}: {exc}")
                raise self.retry(
                    exc=problem, countdown=2 ** min(self.request.retries, 5), max_retries=self.schema_retry_limit
                ) from exc
            if connection.schema_name != wanted:
                raise WrongSchema(
                    f"task {self.name} was sent for schema {wanted} but would run in {connection.schema_name}"
                )
        return super().__call__(*args, **kwargs)


class CodexCelery(CeleryApp):
    task_cls = "codex.celery:CodexTask"


app = CodexCelery("codex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.include = ["codex.tasks", "codex.jobs"]
app.autodiscover_tasks()

# Task counts and failures for /metrics, task id and firm on every log record of a task.
from .metrics import connect_celery_signals  # noqa: E402

connect_celery_signals()

# Every task sent to a Redis broker is remembered until it finished (lost messages are re-sent).
from . import delivery  # noqa: E402, F401
