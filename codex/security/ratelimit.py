"""Rate limits and sign-in throttling in the shared cache (Redis, or the database cache).

Every process sees the same counters. Keys name the firm explicitly and are written with the public
schema active, so django-tenants' per-schema key prefix does not split one IP's counter by firm.

Two tools:
- ``hit(scope, ident, rate)``: fixed-window counter for request rates (credential pages).
- ``login_*``: failed sign-ins per account and per IP, answered with an exponential delay (not a
  permanent lockout), capped at ``CODEX_LOGIN_MAX_DELAY_SECONDS``; a success or a password reset
  clears the account's counter, so an attacker cannot keep a real user out for long.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django_tenants.utils import schema_context

from .net import client_ip

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"5/min"`` -> (5, 60). Raises ValueError on a malformed rate."""
    count, _, period = rate.partition("/")
    if period not in _PERIODS or not count.isdigit():
        raise ValueError(f"Malformed rate {rate!r}: use '<n>/<s|min|h|day>'")
    return int(count), _PERIODS[period]


def _digest(value: str) -> str:
    # E-mail addresses and IPs are hashed into keys: the cache holds no personal data in clear.
    return hashlib.sha256(value.lower().encode()).hexdigest()[:32]


def _firm(request) -> str:
    tenant = getattr(request, "tenant", None)
    return tenant.schema_name if tenant is not None else "public"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


def hit(*, scope: str, ident: str, rate: str, now: float | None = None) -> Decision:
    """Count one request for ``ident`` in ``scope``; refuse beyond ``rate`` until the window ends."""
    limit, window = parse_rate(rate)
    now = time.time() if now is None else now
    bucket = int(now // window)
    key = f"rl:{scope}:{_digest(ident)}:{bucket}"
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        if cache.add(key, 1, window + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, window + 1)
                count = 1
    if count > limit:
        return Decision(False, max(1, math.ceil((bucket + 1) * window - now)))
    return Decision(True)


def hit_refund(*, scope: str, ident: str, rate: str, now: float | None = None) -> None:
    """Give back one request counted by ``hit`` in the current window: for limits that count only
    what succeeded (a sign-up refused for bad input is not one of the sign-ups allowed per IP)."""
    _limit, window = parse_rate(rate)
    now = time.time() if now is None else now
    key = f"rl:{scope}:{_digest(ident)}:{int(now // window)}"
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        try:
            cache.decr(key)
        except ValueError:  # the window ended meanwhile: its count is gone with it
            return


def too_many_requests(request, retry_after: int) -> HttpResponse:
    message = f"Too many attempts. Try again in {retry_after} seconds."
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": {"code": "throttled", "message": message, "details": {"retry_after": retry_after}}},
            status=429,
        )
    else:
        response = render(request, "security/throttled.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limit(scope: str, *, methods: tuple[str, ...] = ("POST",)):
    """Decorator for Django views: at most ``CODEX_FORM_RATES[scope]`` requests per client IP and firm.

    Only ``methods`` count (by default POST: showing a form is free, submitting it is not).
    Answers 429 with ``Retry-After``.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                ident = f"{_firm(request)}|{client_ip(request) or '-'}"
                decision = hit(scope=scope, ident=ident, rate=settings.CODEX_FORM_RATES[scope])
                if not decision.allowed:
                    return too_many_requests(request, decision.retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- Failed sign-ins -----------------------------------------------------------------------------------
def _account_key(firm: str, email: str) -> str:
    return f"lf:acct:{_digest(f'{firm}|{email}')}"


def _ip_key(ip: str | None) -> str:
    return f"lf:ip:{_digest(ip or '-')}"


def _delay_for(failures: int, threshold: int) -> int:
    """0 below the threshold, then 30 s doubling with every further failure, capped."""
    if failures < threshold:
        return 0
    return min(settings.CODEX_LOGIN_MAX_DELAY_SECONDS, 30 * 2 ** (failures - threshold))


def _state(key: str) -> dict:
    return cache.get(key) or {"n": 0, "last": 0.0}


def login_wait(*, firm: str, email: str, ip: str | None, now: float | None = None) -> int:
    """Seconds this account or IP must wait before the next sign-in attempt (0: go ahead)."""
    now = time.time() if now is None else now
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        account = _state(_account_key(firm, email))
        by_ip = _state(_ip_key(ip))
    wait = 0
    for state, threshold in (
        (account, settings.CODEX_LOGIN_ACCOUNT_FAILURES),
        (by_ip, settings.CODEX_LOGIN_IP_FAILURES),
    ):
        delay = _delay_for(state["n"], threshold)
        if delay:
            wait = max(wait, math.ceil(state["last"] + delay - now))
    return max(wait, 0)


def login_failed(*, firm: str, email: str, ip: str | None, now: float | None = None) -> None:
    now = time.time() if now is None else now
    window = settings.CODEX_LOGIN_WINDOW_SECONDS
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        for key in (_account_key(firm, email), _ip_key(ip)):
            state = _state(key)
            if now - state["last"] > window:
                state = {"n": 0, "last": 0.0}
            cache.set(key, {"n": state["n"] + 1, "last": now}, window + settings.CODEX_LOGIN_MAX_DELAY_SECONDS)


def login_reset(*, firm: str, email: str) -> None:
    """Forget an account's failures (after a successful sign-in or a password reset)."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.delete(_account_key(firm, email))
