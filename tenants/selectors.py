"""Reads for firms: host resolution (cached), API key lookup, operator listings."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.utils import timezone
from django_tenants.utils import schema_context

from .cache import MISS, tenant_cache
from .exceptions import InvalidApiKey
from .models import ApiKey, Domain, Tenant


def current_tenant() -> Tenant:
    """The firm (or the public tenant) the default connection is set to.

    django-tenants' backend adds ``tenant`` to the connection; django-stubs types
    ``django.db.connection`` as Django's base wrapper, hence the one ignore."""
    return connection.tenant  # type: ignore[attr-defined]


def _host_key(host: str) -> str:
    return f"host:{host}"


def _api_key_key(prefix: str) -> str:
    return f"apikey:{prefix}"


def tenant_for_host(host: str) -> Tenant | None:
    """The firm served at ``host`` (its slug domain or a custom domain), or None.

    Cached per known host in process memory in front of the ``tenants`` cache (Redis; tenants.cache),
    so a warm request makes no query and no cache round trip; tenants.signals invalidates the entry
    when a firm or one of its domains changes. An unknown host is not cached: anyone can send any
    Host header, and an entry per host would let them fill the cache. It costs one query on the
    unique index of ``lower(domain)``.
    """
    host = host.lower().rstrip(".")
    cached = tenant_cache.get(_host_key(host))
    if cached is not MISS and cached is not None:
        return cached
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        domain = (
            Domain.objects.select_related("tenant")
            .alias(domain_lower=Lower("domain"))
            .filter(domain_lower=host)
            .first()
        )
    if domain is None:
        return None
    tenant_cache.set(_host_key(host), domain.tenant, settings.TENANT_CACHE_SECONDS)
    return domain.tenant


def tenant_cache_invalidate(*, hosts: list[str], api_key_prefixes: Sequence[str] = ()) -> None:
    """Forget cached hosts and API keys in every process (at once here, within a second elsewhere)."""
    keys = [_host_key(h.lower()) for h in hosts] + [_api_key_key(p) for p in api_key_prefixes]
    tenant_cache.delete_many(keys)
    # Again once the change is committed: a request served between the delete above and the commit
    # would otherwise re-cache the old row for TENANT_CACHE_SECONDS.
    transaction.on_commit(lambda: tenant_cache.delete_many(keys))


def api_keys_made_by(*, tenant: Tenant, email: str) -> list[ApiKey]:
    """The firm's keys made by the person with ``email`` that still work (not revoked, not expired),
    oldest first: what dies with them when they are deactivated (decision 0506)."""
    if not email:
        return []
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return list(
            ApiKey.objects.select_related("tenant")
            .filter(tenant=tenant, created_by__iexact=email, revoked_at__isnull=True)
            .exclude(expires_at__lte=timezone.now())
            .order_by("created_at", "pk")
        )


def api_key_cache_store(key: ApiKey) -> None:
    """Refresh the cached copy of ``key`` (after its ``last_used_at`` moved)."""
    tenant_cache.set(_api_key_key(key.prefix), key, settings.TENANT_CACHE_SECONDS)


def api_key_resolve(raw: str) -> ApiKey:
    """Return the active key for ``raw`` with its firm, or raise InvalidApiKey.

    A known key is cached like a host (no query when warm; one query when cold); unknown prefixes
    are not cached. tenants.signals invalidates a key when it or its firm changes.
    """
    # function-level: services imports selectors: cycle listed in the acyclic contract
    from .services import API_KEY_TYPE_PREFIX, _hash_key

    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_TYPE_PREFIX or not parts[1] or not parts[2]:
        raise InvalidApiKey("Malformed API key.")
    key = tenant_cache.get(_api_key_key(parts[1]))
    if key is MISS or key is None:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            key = ApiKey.objects.select_related("tenant").filter(prefix=parts[1]).first()
        if key is not None:
            api_key_cache_store(key)
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


def firm_schema_names() -> list[str]:
    """Every firm's schema (any status: closed firms keep their data), in a stable order."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return list(
            Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
            .order_by("pk")
            .values_list("schema_name", flat=True)
        )


@dataclass(frozen=True)
class FirmMember:
    name: str
    email: str
    role: str
    is_active: bool
    last_login: datetime | None


@dataclass(frozen=True)
class FirmOverview:
    """What the operators' console shows of a firm beside its billing: people, activity, hosts."""

    members: list[FirmMember]
    active_users: int
    last_sign_in: datetime | None
    last_api_use: datetime | None
    domains: list[Domain]

    @property
    def last_activity(self) -> datetime | None:
        seen = [t for t in (self.last_sign_in, self.last_api_use) if t is not None]
        return max(seen) if seen else None


def firm_overview(*, tenant: Tenant, members_shown: int = 20) -> FirmOverview:
    """The firm's members (active first, most recently signed in first; at most ``members_shown``),
    its last sign-in and last API use, and its domains (primary first). Three queries, whatever the
    firm's size: members (with window counts) in the firm's schema, API keys' last use, domains."""
    quoted = connection.ops.quote_name(tenant.schema_name)
    with connection.cursor() as cursor:
        # One statement in the firm's schema: the page of members plus the firm-wide figures.
        cursor.execute(
            f"SELECT first_name, last_name, email, role, is_active, last_login, "  # noqa: S608 - quoted schema
            f"count(*) FILTER (WHERE is_active) OVER (), max(last_login) OVER () "
            f"FROM {quoted}.accounts_user ORDER BY is_active DESC, last_login DESC NULLS LAST, email LIMIT %s",
            [members_shown],
        )
        rows = cursor.fetchall()
    members = [
        FirmMember(name=f"{first} {last}".strip() or email, email=email, role=role, is_active=active, last_login=seen)
        for first, last, email, role, active, seen, _n, _last in rows
    ]
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        last_api_use = ApiKey.objects.filter(tenant_id=tenant.pk).aggregate(last=Max("last_used_at"))["last"]
        domains = list(Domain.objects.filter(tenant_id=tenant.pk).order_by("-is_primary", "domain"))
    return FirmOverview(
        members=members,
        active_users=rows[0][6] if rows else 0,
        last_sign_in=rows[0][7] if rows else None,
        last_api_use=last_api_use,
        domains=domains,
    )
