"""API-call metering without a database write per request.

Each API request on a firm adds one to a counter keyed by firm and UTC day in Redis
(``REDIS_URL``, always there: development and tests run an embedded one): ``INCR
codex:meter:api:<tenant id>:<yyyymmdd>``, shared by every web process.

``usage_flush()`` (beat, every minute) moves the counters into ``UsageDaily`` with ``INSERT ... ON
CONFLICT DO UPDATE SET count = count + excluded.count``. A counter is read and deleted in one step
(``GETDEL``), so two flushes running at once never read the same increment twice, and an increment
made during a flush lands in the next one.

The same flush marks the firms that have used up their plan's monthly API calls (plans without
overage pricing) and those whose plan has no ``api`` feature; ``ApiMeteringMiddleware`` answers
their API requests with 402 ``plan_limit_exceeded`` / ``feature_not_in_plan`` (the latter for API
keys and bearer tokens only: the firm's own web UI keeps working) without touching the database:
the flags live in Redis. A plan change republishes them on commit; otherwise
they take effect within one flush interval (docs/decisions/0301-metering.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.http import JsonResponse
from django_tenants.utils import schema_context
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "codex:meter:api:"
BLOCK_PREFIX = "codex:meter:blocked:"
NO_API_KEY = "codex:meter:no-api-feature"
# Paths that are never counted nor blocked: the schema and docs, and billing itself so that a
# firm over its limit can still see its usage and upgrade through the API.
EXEMPT_PREFIXES = ("/api/v1/schema/", "/api/v1/docs/", "/api/v1/billing/")
COUNTED_PREFIX = "/api/"

_lock = threading.Lock()
# With Redis, each process remembers a firm's two flags for a second (docs/benchmarks.md, "Profile
# and fix"): two Redis round trips per second per firm instead of two per API request. The flags
# change at a flush or a plan change; a second more before they bite is within the flush interval.
_flag_memo: dict[tuple[str, int], tuple[bool, float]] = {}
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        timeout = getattr(settings, "CODEX_REDIS_TIMEOUT_SECONDS", 1.0)
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    return _redis_client


# Redis unreachable (decision 0933): counts wait in process memory and go out with the next count
# that reaches Redis (nothing is lost unless the process dies meanwhile); the plan flags keep
# their last known value, or "not blocked" (fail open: a cache outage is not a reason to refuse).
_unsent: dict[tuple[int, date], int] = {}
_outage_logged_at = float("-inf")


def _outage(exc: Exception) -> None:
    global _outage_logged_at
    now = time.monotonic()
    if now - _outage_logged_at >= 10:
        _outage_logged_at = now
        logger.warning("metering: Redis unavailable, counts kept in memory, plan flags unchanged (%s)", exc)


def set_redis_client(client) -> None:
    """Point metering at another Redis client (tests use a throwaway server)."""
    global _redis_client
    _redis_client = client
    _flag_memo.clear()


def reset_local_state() -> None:
    """Forget the flags this process remembers (tests)."""
    with _lock:
        _flag_memo.clear()
        _unsent.clear()


def _today() -> date:
    return datetime.now(UTC).date()


def _month(day: date) -> str:
    return f"{day:%Y%m}"


def record_api_call(tenant_id: int, *, day: date | None = None, count: int = 1) -> None:
    """Count ``count`` API calls for a firm: one Redis INCRBY."""
    day = day or _today()
    with _lock:
        waiting = dict(_unsent)
        _unsent.clear()
    waiting[(tenant_id, day)] = waiting.get((tenant_id, day), 0) + count
    try:
        pipe = _redis().pipeline(transaction=False)
        for (firm, when), n in waiting.items():
            pipe.incrby(f"{KEY_PREFIX}{firm}:{when:%Y%m%d}", n)
        pipe.execute()
    except RedisError as exc:
        with _lock:
            for key, n in waiting.items():
                _unsent[key] = _unsent.get(key, 0) + n
        _outage(exc)


def pending_for(tenant_id: int, days: list[date]) -> int:
    """Calls of one firm on ``days`` not yet flushed: one MGET."""
    client = _redis()
    if not days:
        return 0
    values = client.mget([f"{KEY_PREFIX}{tenant_id}:{day:%Y%m%d}" for day in days])
    return sum(int(v) for v in values if v is not None)


def pending_counts() -> dict[tuple[int, date], int]:
    """Every count not yet flushed."""
    client = _redis()
    result: dict[tuple[int, date], int] = {}
    for raw_key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        value = client.get(raw_key)
        if value is not None:
            result[_parse_key(key)] = int(value)
    return result


def _parse_key(key: str) -> tuple[int, date]:
    tenant_id, day = key[len(KEY_PREFIX) :].split(":")
    return int(tenant_id), datetime.strptime(day, "%Y%m%d").date()  # noqa: DTZ007 (a date, no zone)


def _take_counts() -> dict[tuple[int, date], int]:
    """Remove and return every pending count. Each increment is returned by exactly one caller."""
    taken: dict[tuple[int, date], int] = defaultdict(int)
    client = _redis()
    for raw_key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
        value = client.getdel(raw_key)  # atomic read-and-delete: a concurrent flush gets None
        if value is None:
            continue
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        taken[_parse_key(key)] += int(value)
    return {k: v for k, v in taken.items() if v}


def _write_counts(counts: dict[tuple[int, date], int]) -> None:
    from tenants.models import Tenant

    from .models import Metric, UsageDaily

    table = UsageDaily._meta.db_table
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        known = set(Tenant.objects.filter(pk__in={t for t, _ in counts}).values_list("pk", flat=True))
        rows = [(t, d, Metric.API_CALLS.value, n) for (t, d), n in sorted(counts.items()) if t in known]
        if not rows:
            return
        placeholders = ", ".join(["(%s, %s, %s, %s, now())"] * len(rows))
        params = [value for row in rows for value in row]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, day, metric, count, updated_at) VALUES {placeholders} "  # noqa: S608
                f"ON CONFLICT (tenant_id, day, metric) DO UPDATE "
                f"SET count = {table}.count + EXCLUDED.count, updated_at = now()",
                params,
            )


def usage_flush(*, refresh_limits: bool = True) -> int:
    """Move pending API-call counts into UsageDaily; return how many calls were written.

    Safe to run concurrently and repeatedly: counts are taken atomically (GETDEL) and
    added with an atomic upsert. If the write fails the counts are put back, so none is lost.
    """
    counts = _take_counts()
    if counts:
        try:
            _write_counts(counts)
        except Exception:
            # Not swallowed: the counts go back to Redis for the next flush, the error is raised.
            for (tenant_id, day), n in counts.items():
                record_api_call(tenant_id, day=day, count=n)
            raise
    if refresh_limits:
        refresh_api_blocks()
    return sum(counts.values())


# --- API-call limit ---------------------------------------------------------------------------------
def refresh_api_blocks(*, today: date | None = None) -> set[int]:
    """Recompute which firms have used up their plan's API calls this month (returned) and which
    have no API access in their plan; publish both where the middleware reads them."""
    from .selectors import api_calls_over_limit, tenants_without_feature

    today = today or _today()
    month = _month(today)
    blocked = api_calls_over_limit(month_of=today)
    no_api = tenants_without_feature("api")
    client = _redis()
    for raw_key in client.scan_iter(match=f"{BLOCK_PREFIX}*", count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        if int(key.rsplit(":", 1)[1]) not in blocked:
            client.delete(raw_key)
    for tenant_id in blocked:
        client.set(f"{BLOCK_PREFIX}{tenant_id}", month, ex=35 * 24 * 3600)
    with client.pipeline() as pipe:  # MULTI/EXEC: readers never see an empty set mid-refresh
        pipe.delete(NO_API_KEY)
        if no_api:
            pipe.sadd(NO_API_KEY, *no_api)
        pipe.execute()
    with _lock:
        _flag_memo.clear()
    return blocked


def refresh_api_blocks_on_commit() -> None:
    """After a plan change commits, republish the flags at once (not at the next flush)."""
    transaction.on_commit(refresh_api_blocks)


def _memo(kind: str, tenant_id: int, read) -> bool:
    now = time.monotonic()
    hit = _flag_memo.get((kind, tenant_id))
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        value = read()
    except RedisError as exc:
        _outage(exc)
        return hit[0] if hit is not None else False
    _flag_memo[(kind, tenant_id)] = (value, now + getattr(settings, "CODEX_METERING_FLAG_MEMO_SECONDS", 1.0))
    return value


def api_blocked(tenant_id: int) -> bool:
    month = _month(_today())
    client = _redis()

    def read() -> bool:
        value = client.get(f"{BLOCK_PREFIX}{tenant_id}")
        return value is not None and (value.decode() if isinstance(value, bytes) else value) == month

    return _memo("blocked", tenant_id, read)


def api_feature_missing(tenant_id: int) -> bool:
    client = _redis()
    return _memo("no_api", tenant_id, lambda: bool(client.sismember(NO_API_KEY, tenant_id)))


def _programmatic(request) -> bool:
    """An API key or bearer token: what the plan's "api" feature covers (not the web UI's session)."""
    return bool(request.META.get("HTTP_X_API_KEY")) or request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")


def _has_credentials(request) -> bool:
    """Anonymous callers get the API's 401, not a 402 that would tell them about the firm's plan."""
    return _programmatic(request) or settings.SESSION_COOKIE_NAME in request.COOKIES


def _authenticated(request) -> bool:
    """Whether the API authenticated the caller: only those calls count, so anonymous requests to a
    firm's host never burn its quota. DRF sets ``request.user`` and ``request.auth`` on the Django
    request once it has authenticated (the user, or ``AnonymousUser`` and None when no
    authenticator accepted the request); a request DRF never authenticated (no API view answered
    it) is not a billable call."""
    return hasattr(request, "auth") and bool(getattr(request.user, "is_authenticated", False))


def _payment_required(code: str, message: str, details: dict) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": details}}, status=402)


class ApiMeteringMiddleware:
    """The one place API calls are counted: each authenticated API request of a firm adds one,
    after its response, whatever the answer (a 4xx or a 429 is a call too). Before the view,
    refuses API requests with 402 once the plan's calls are used up (or for API keys and bearer
    tokens, when the plan has no API access).

    Makes no database query: one Redis ``INCRBY`` (or a dict update without Redis) per counted
    request, and the plan flags read from Redis at most once a second per firm and process.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        path = request.path
        if tenant is None or not path.startswith(COUNTED_PREFIX) or path.startswith(EXEMPT_PREFIXES):
            return self.get_response(request)
        if _programmatic(request) and api_feature_missing(tenant.pk):
            return _payment_required(
                "feature_not_in_plan",
                "Your plan does not include API access. Upgrade your plan on the billing page.",
                {"limit": "api", "billing_url": "/billing/"},
            )
        if _has_credentials(request) and api_blocked(tenant.pk):
            return _payment_required(
                "plan_limit_exceeded",
                "Your plan's API calls for this month are used up. Upgrade your plan on the billing page.",
                {"limit": "api_calls", "billing_url": "/billing/"},
            )
        response = self.get_response(request)
        if _authenticated(request):
            record_api_call(tenant.pk)
        return response
