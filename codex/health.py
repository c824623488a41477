"""/health (the process is up; no database) and /ready (database reachable, schemas migrated)."""

from __future__ import annotations

import logging
import time

import redis
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django_tenants.utils import schema_context
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_MIGRATIONS_OK_UNTIL = 0.0
_MIGRATIONS_CACHE_SECONDS = 60


@never_cache
def health(request):
    return JsonResponse({"status": "ok"})


def _pending_migrations(schema: str) -> int:
    with schema_context(schema):
        executor = MigrationExecutor(connection)
        targets = executor.loader.graph.leaf_nodes()
        plan = executor.migration_plan(targets)
        # In a schema, only the apps that belong to it have to be migrated.
        apps_of_schema = settings.SHARED_APPS if schema == settings.PUBLIC_SCHEMA_NAME else settings.TENANT_APPS
        wanted = {_label(a) for a in apps_of_schema}
        return sum(1 for migration, _backwards in plan if migration.app_label in wanted)


def _label(dotted: str) -> str:

    for config in apps.get_app_configs():
        if config.name == dotted:
            return config.label
    return dotted.rsplit(".", 1)[-1]


_redis_client = None


def _redis_state() -> str:
    global _redis_client
    if _redis_client is None:
        timeout = settings.CODEX_REDIS_TIMEOUT_SECONDS
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        _redis_client.ping()
    except RedisError as exc:
        logger.warning("readiness: redis unreachable: %s", exc)
        return "unreachable"
    return "ok"


def readiness() -> tuple[bool, dict]:
    global _MIGRATIONS_OK_UNTIL
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        logger.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
        return False, checks
    # Redis is reported, not required: without it the node still serves what does not need it
    # (decision 0933), so the load balancer must keep sending it requests.
    checks["redis"] = _redis_state()
    if time.monotonic() < _MIGRATIONS_OK_UNTIL:
        checks["migrations"] = "ok"
        return True, checks
    try:
        pending = {
            "public": _pending_migrations(settings.PUBLIC_SCHEMA_NAME),
            "template": _pending_migrations(settings.TENANT_BASE_SCHEMA),
        }
    except DatabaseError as exc:
        logger.warning("readiness: migration check failed: %s", exc)
        checks["migrations"] = "unknown"
        return False, checks
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [settings.TENANT_BASE_SCHEMA]
        )
        template_exists = cursor.fetchone() is not None
    if not template_exists:
        checks["migrations"] = "template schema missing"
        return False, checks
    if any(pending.values()):
        checks["migrations"] = f"pending: public {pending['public']}, template {pending['template']}"
        return False, checks
    checks["migrations"] = "ok"
    _MIGRATIONS_OK_UNTIL = time.monotonic() + _MIGRATIONS_CACHE_SECONDS
    return True, checks


@never_cache
def ready(request):
    ok, checks = readiness()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
