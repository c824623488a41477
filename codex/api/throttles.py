"""Rate limits shared by every process (they live in the default cache: Redis in production).

Per API key, per user or per IP, by what authenticated the request; authenticated callers get the
base rate times their firm's plan multiplier (``CODEX_PLAN_RATE_MULTIPLIERS``). The plan's code
comes from whoever registered a source with ``register_plan_code_source`` (billing, at start-up):
the kernel knows nothing of billing. Credential endpoints have their own tighter per-IP limit
(``AuthRateThrottle``). Refusals are 429 with ``Retry-After`` (DRF sets it; the error envelope
repeats it in ``details.retry_after``).

Redis unreachable (decision 0933): the API rate limits fail **open** (the request is served,
a warning is logged at most every 10 s): they protect capacity, and refusing every API call
while the cache is away would turn a cache outage into an API outage. The credential endpoint's
limit (``AuthRateThrottle``) and the sign-in throttles fail **closed** (a 503 envelope): they
protect accounts against guessing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from codex.security.net import client_ip

# The plan of a firm changes rarely: each process remembers it for a minute instead of asking
# the registered source (several queries) on every request.
_PLAN_MEMO: dict[int, tuple[str, float]] = {}
_PLAN_MEMO_SECONDS = 60
DEFAULT_MULTIPLIERS = {"free": 0.5, "starter": 1.0, "pro": 2.0, "enterprise": 5.0}
DEFAULT_PLAN_CODE = "free"

_plan_code_source: Callable[[object], str | None] | None = None


def register_plan_code_source(source: Callable[[object], str | None]) -> None:
    """Tell the throttle how to find a firm's plan code (``source(tenant)``; None: no plan)."""
    global _plan_code_source
    _plan_code_source = source
    _PLAN_MEMO.clear()


def plan_code_of(tenant) -> str:
    now = time.monotonic()
    memo = _PLAN_MEMO.get(tenant.pk)
    if memo and memo[1] > now:
        return memo[0]
    code = (_plan_code_source(tenant) if _plan_code_source is not None else None) or DEFAULT_PLAN_CODE
    _PLAN_MEMO[tenant.pk] = (code, now + _PLAN_MEMO_SECONDS)
    return code


def plan_multiplier(tenant) -> float:
    if tenant is None:
        return 1.0
    multipliers = getattr(settings, "CODEX_PLAN_RATE_MULTIPLIERS", DEFAULT_MULTIPLIERS)
    return multipliers.get(plan_code_of(tenant), 1.0)


logger = logging.getLogger(__name__)
_fail_open_logged_at = float("-inf")


def _fail_open(exc: Exception) -> None:
    global _fail_open_logged_at
    now = time.monotonic()
    if now - _fail_open_logged_at >= 10:
        _fail_open_logged_at = now
        logger.warning("API rate limit not applied: Redis unavailable (%s)", exc)


class PrincipalRateThrottle(SimpleRateThrottle):
    """Per API key, per user or per IP, by what authenticated the request."""

    scope = "principal"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request._request) or "unknown"

    def allow_request(self, request, view):
        try:
            return self._allow_request(request, view)
        except RedisError as exc:
            _fail_open(exc)
            return True

    def _allow_request(self, request, view):
        tenant = getattr(request._request, "tenant", None)
        authenticated = bool(request.user and request.user.is_authenticated)
        if not authenticated:
            return super().allow_request(request, view)
        # Scale the base rate by the firm's plan before counting.
        self.num_requests, self.duration = self.parse_rate(self.get_rate())
        self.num_requests = max(1, int(self.num_requests * plan_multiplier(tenant)))
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return self._allow_by_counter()

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

    def _allow_by_counter(self) -> bool:
        """Fixed window: one counter per caller and window, through the cache's own ``incr``/``add``.

        DRF's sliding log reads and writes the list of every request time in the window (up to
        ``num_requests`` floats, 3,000 for an enterprise key) on each request: a payload that grows
        with the rate. A counter per window allows at most ``num_requests`` per window too; a burst
        across a window boundary may reach twice that within one window's length, the usual price
        of fixed windows (docs/decisions/0701-api-throttle-counter.md). The counter outlives its
        window by a second, so it is never incremented after it expired.
        """
        self.now = self.timer()
        window = int(self.now // self.duration)
        key = f"{self.key}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first request; if another process added it meanwhile, count on
            count = 1 if self.cache.add(key, 1, int(self.duration) + 1) else self.cache.incr(key)
        self._window_end = (window + 1) * self.duration
        return count <= self.num_requests

    def wait(self):
        window_end = getattr(self, "_window_end", None)
        if window_end is None:
            return super().wait()
        return max(1.0, window_end - self.now)


class AuthRateThrottle(SimpleRateThrottle):
    """Tighter limit on credential endpoints (token issue), per IP."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"throttle:auth:{client_ip(request._request) or 'unknown'}"
