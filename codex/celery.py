"""Celery app with tenant context: every task carries the schema it was sent from and runs in it.

tenant-schemas-celery switches the schema in a ``task_prerun`` signal; Celery logs and swallows
errors raised by signal handlers, so if the firm cannot be looked up (database down, firm deleted)
the task would silently run in the public schema. ``CodexTask`` refuses to run in any schema but
the one it was sent for, so such a task fails (and is retried) instead.
"""

import os

from tenant_schemas_celery.app import CeleryApp, get_schema_name_from_task
from tenant_schemas_celery.task import TenantTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")


class WrongSchema(RuntimeError):
    pass


class CodexTask(TenantTask):
    abstract = True

    def __call__(self, *args, **kwargs):
        from django.db import connection

        wanted = get_schema_name_from_task(self, kwargs) or "public"
        if not self.request.is_eager and connection.schema_name != wanted:
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
