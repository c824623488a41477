"""Reads for firms: host resolution (cached), API key lookup, operator listings."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from .exceptions import InvalidApiKey
from .models import ApiKey, Domain, Tenant

_MISSING = "__none__"


def _host_key(host: str) -> str:
    return f"host:{host}"


def tenant_for_host(host: str) -> Tenant | None:
    """The firm served at ``host`` (its slug domain or a custom domain), or None.

    Cached per host in the ``tenants`` cache (Redis when configured), so a warm request makes no
    query; tenants.signals invalidates the entry when a firm or one of its domains changes.
    """
    host = host.lower().rstrip(".")
    cache = caches["tenants"]
    cached = cache.get(_host_key(host))
    if cached is not None:
        return None if cached == _MISSING else cached
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        domain = Domain.objects.select_related("tenant").filter(domain__iexact=host).first()
    tenant = domain.tenant if domain else None
    cache.set(_host_key(host), tenant if tenant else _MISSING, settings.TENANT_CACHE_SECONDS)
    return tenant


def tenant_cache_invalidate(*, hosts: list[str]) -> None:
    caches["tenants"].delete_many([_host_key(h.lower()) for h in hosts])


def api_key_resolve(raw: str) -> ApiKey:
    """Return the active key for ``raw`` with its firm (one query), or raise InvalidApiKey."""
    from .services import API_KEY_TYPE_PREFIX, _hash_key

    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_TYPE_PREFIX or not parts[1] or not parts[2]:
        raise InvalidApiKey("Malformed API key.")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        key = ApiKey.objects.select_related("tenant").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.hashed_key, _hash_key(raw)):
        raise InvalidApiKey("Unknown API key.")
    if key.revoked_at is not None:
        raise InvalidApiKey("This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise InvalidApiKey("This API key has expired.")
    return key


def tenant_user_counts(*, tenants: list[Tenant]) -> dict[int, int]:
    """Active users per firm for a page of firms, in one query across their schemas."""
    if not tenants:
        return {}
    parts = []
    params: list = []
    for tenant in tenants:
        quoted = connection.ops.quote_name(tenant.schema_name)
        parts.append(f"SELECT %s AS id, count(*) AS n FROM {quoted}.accounts_user WHERE is_active")
        params.append(tenant.pk)
    sql = " UNION ALL ".join(parts)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: row[1] for row in cursor.fetchall()}
