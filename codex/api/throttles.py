"""Rate limits shared by every process (they live in Redis, the default cache's server).

Per API key, per user or per IP, by what authenticated the request; authenticated callers get the
base rate times their firm's plan multiplier (``CODEX_PLAN_RATE_MULTIPLIERS``). Credential
endpoints have their own tighter per-IP limit (``AuthRateThrottle``). Refusals are 429 with
``Retry-After`` (DRF sets it; the error envelope repeats it in ``details.retry_after``).
"""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from billing.metering import api_call_counted, api_call_key_for_pipeline
from codex.security.net import client_ip

# The plan of a firm changes rarely: each process remembers it for a minute instead of asking
# billing (several queries) on every request.
_PLAN_MEMO: dict[int, tuple[str, float]] = {}
_PLAN_MEMO_SECONDS = 60
DEFAULT_MULTIPLIERS = {"free": 0.5, "starter": 1.0, "pro": 2.0, "enterprise": 5.0}


def plan_code_of(tenant) -> str:
    now = time.monotonic()
    memo = _PLAN_MEMO.get(tenant.pk)
    if memo and memo[1] > now:
        return memo[0]
    from billing.entitlements import plan_of

    plan = plan_of(tenant)
    code = plan.code if plan is not None else "free"
    _PLAN_MEMO[tenant.pk] = (code, now + _PLAN_MEMO_SECONDS)
    return code


def plan_multiplier(tenant) -> float:
    if tenant is None:
        return 1.0
    multipliers = getattr(settings, "CODEX_PLAN_RATE_MULTIPLIERS", DEFAULT_MULTIPLIERS)
    return multipliers.get(plan_code_of(tenant), 1.0)


class PrincipalRateThrottle(SimpleRateThrottle):
    """Per API key, per user or per IP, by what authenticated the request."""

    scope = "principal"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request._request) or "unknown"

    def allow_request(self, request, view):
        tenant = getattr(request._request, "tenant", None)
        authenticated = bool(request.user and request.user.is_authenticated)
        allowed = super().allow_request(request, view) if not authenticated else None
        if not authenticated:
            return allowed
        # Scale the base rate by the firm's plan before counting.
        self.num_requests, self.duration = self.parse_rate(self.get_rate())
        self.num_requests = max(1, int(self.num_requests * plan_multiplier(tenant)))
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        if getattr(settings, "CODEX_API_THROTTLE_COUNTER", True):
            return self._allow_by_counter(_redis_client(), request._request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def get_cache_key(self, request, view):
        tenant = getattr(request._request, "tenant", None)
        firm = tenant.schema_name if tenant else "public"
        auth = request.auth
        if hasattr(auth, "prefix"):
            ident = f"key:{auth.prefix}"
        elif request.user and request.user.is_authenticated and getattr(request.user, "pk", None):
            ident = f"user:{firm}:{request.user.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"support:{firm}:{self.get_ident(request)}"
        else:
            self.scope = "anon"
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"

    def _allow_by_counter(self, client, http_request) -> bool:
        """Fixed window on Redis: one ``INCR`` + ``EXPIRE`` round trip, O(1) whatever the rate.

        DRF's sliding log reads and writes the list of every request time in the window (up to
        ``num_requests`` floats, 3,000 for an enterprise key) on each request: two round trips and a
        payload that grows with the rate. A counter per window allows at most ``num_requests`` per
        window too; a burst across a window boundary may reach twice that within one window's
        length, the usual price of fixed windows (docs/decisions/0701-api-throttle-counter.md).

        The same round trip carries the request's API-call count when metering writes to this
        Redis database (``billing.metering.api_call_key_for_pipeline``, decision 0704): one round
        trip per API request instead of two.
        """
        self.now = self.timer()
        window = int(self.now // self.duration)
        key = self.cache.make_and_validate_key(f"{self.key}:{window}")
        meter_key = api_call_key_for_pipeline(http_request, client)
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, int(self.duration) + 1)
        if meter_key is not None:
            pipe.incr(meter_key)
        count = pipe.execute()[0]
        if meter_key is not None:
            api_call_counted(http_request, meter_key)
        self._window_end = (window + 1) * self.duration
        return count <= self.num_requests

    def wait(self):
        window_end = getattr(self, "_window_end", None)
        if window_end is None:
            return super().wait()
        return max(1.0, window_end - self.now)


_CLIENTS: dict[str, object] = {}


def _redis_client():
    """A redis-py client on the default cache's Redis (its first server), one per process and
    location: Django's cache backend builds a new client object at every call, about 100 us of CPU
    per request (docs/benchmarks.md, "Profile and fix"). Keys still come from the cache's own
    ``make_and_validate_key``, so they are the cache's keys."""
    import redis
    from django.core.cache import DEFAULT_CACHE_ALIAS

    location = settings.CACHES[DEFAULT_CACHE_ALIAS]["LOCATION"]
    if not isinstance(location, str):
        location = location[0]
    location = location.split(",")[0]
    client = _CLIENTS.get(location)
    if client is None:
        client = _CLIENTS[location] = redis.Redis.from_url(location)
    return client


class AuthRateThrottle(SimpleRateThrottle):
    """Tighter limit on credential endpoints (token issue), per IP."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"throttle:auth:{client_ip(request._request) or 'unknown'}"
