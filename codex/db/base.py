"""``ENGINE = "codex.db"``: django-tenants' PostgreSQL backend whose connections time every query.

Each connection object is born with ``codex.observability.slow_query_wrapper`` as its outermost
``execute_wrapper``, so a query slower than ``CODEX_SLOW_QUERY_MS`` is logged with its firm wherever
it runs: a request, a Celery task, a management command. Before, the request log middleware added
the wrapper around each request and Celery's task hooks around each task, which cost every request
a connection lookup and missed queries run anywhere else.
"""

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper

from codex.observability import slow_query_wrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(slow_query_wrapper)
