"""Request logs, request ids and slow-query logs.

``RequestLogMiddleware`` sits first in ``MIDDLEWARE``. For every request it

- takes the caller's ``X-Request-ID`` (if it is a sane token) or makes one, and returns it;
- writes one structured log line (``codex.request``) with request id, firm, user, route, method,
  status and duration, and observes the latency histogram of ``codex.metrics``.

Slow queries: every connection of Codex's database backend (``codex.db``) times its queries with
``slow_query_wrapper`` and logs those slower than ``CODEX_SLOW_QUERY_MS`` with their firm (schema).

``RequestContextFilter`` copies the request id and firm of the current request (or Celery task) onto
every log record, so any ``logger.info(...)`` made while serving it can be joined to its request line.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from pythonjsonlogger import json as jsonlogger
from redis.exceptions import RedisError

from . import metrics

request_logger = logging.getLogger("codex.request")
slow_query_logger = logging.getLogger("codex.db.slow")
db_logger = logging.getLogger("codex.db")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # whole string: fullmatch, so no trailing newline

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("codex_request_id", default="")
firm_var: contextvars.ContextVar[str] = contextvars.ContextVar("codex_firm", default="")


def request_id_from(raw: str | None) -> str:
    """The caller's request id when it is a plain token (no log injection), else a fresh one:
    32 random hex digits (128 bits from ``os.urandom``, as a ``uuid4().hex`` has 122 of them, without
    building a ``UUID`` object per request)."""
    if raw and _REQUEST_ID_RE.fullmatch(raw):
        return raw
    return os.urandom(16).hex()


class JsonFormatter(jsonlogger.JsonFormatter):
    """python-json-logger's formatter (configured in ``LOGGING``), with the time in UTC, ISO 8601
    with milliseconds (``2026-11-18T11:06:40.250Z``): ``logging.Formatter``'s documented
    ``converter`` and default time formats. Every ``extra=`` field (and ``request_id``/``firm`` from
    ``RequestContextFilter``) becomes a key; a value JSON cannot encode is written as text."""

    converter = staticmethod(time.gmtime)  # a plain function: as logging.Formatter documents it
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``firm`` of the current request or task to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "firm"):
            record.firm = firm_var.get() or _current_firm()
        return True


def _current_firm() -> str:
    return _firm_label(getattr(connection, "schema_name", "") or "")


def _slow_query_threshold() -> float:
    return getattr(settings, "CODEX_SLOW_QUERY_MS", 200) / 1000.0


def slow_query_wrapper(execute, sql, params, many, context):
    """``connection.execute_wrapper``: time each query, log the slow ones with their firm."""
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - start
        if elapsed >= _slow_query_threshold():
            schema = getattr(context["connection"], "schema_name", "") or ""
            metrics.SLOW_QUERIES.labels(firm=_firm_label(schema)).inc()
            # The statement only, never its parameters: they may hold personal data.
            slow_query_logger.warning(
                "slow query",
                extra={
                    "firm": _firm_label(schema),
                    "schema": schema,
                    "duration_ms": round(elapsed * 1000, 1),
                    "sql": str(sql)[:2000],
                    "many": many,
                },
            )


def _firm_label(schema: str) -> str:
    # Firm schemas are ``firm_<slug with - as _>`` (one-to-one: slugs have no underscores).
    if not schema or not schema.startswith("firm_"):
        return ""
    return schema.removeprefix("firm_").replace("_", "-")


def _route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    # The pattern ("portfolios/<int:pk>/"), never the raw path: bounded label cardinality.
    return "/" + (match.route or "")


def _user_of(request) -> str:
    # Without a session cookie the lazy session user resolves to AnonymousUser without a query;
    # an API key or bearer token replaced it with the real user (DRF sets ``request.user``).
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    api_key = getattr(user, "api_key", None)
    if api_key is not None:
        return f"apikey:{api_key.prefix}"
    return str(user.pk)


class RequestLogMiddleware:
    """First middleware: request id in and out, one JSON log line per request, latency metrics.

    Slow queries are timed by the connection itself (``codex.db``), not per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        id_token = request_id_var.set(request_id)
        firm_token = firm_var.set("")
        start = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            duration = time.perf_counter() - start
            tenant = getattr(request, "tenant", None)
            firm = tenant.slug if tenant is not None else ""
            route = _route_of(request)
            metrics.observe_request(request.method, route, status, duration)
            level = logging.ERROR if status >= 500 else logging.INFO
            if request_logger.isEnabledFor(level):
                request_logger.log(
                    level,
                    "%s %s %s",
                    request.method,
                    route,
                    status,
                    extra={
                        "request_id": request_id,
                        "firm": firm,
                        "user": _user_of(request),
                        "route": route,
                        "method": request.method,
                        "path": request.path[:500],
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )
            # The ids stay set until the next request: Django's own "django.request" line for this
            # response is logged after the middleware chain returns, and should carry them too.
            del id_token, firm_token

    def process_exception(self, request, exception):
        """The database (or Redis) went away mid-request: a 503 with Retry-After, not a 500.

        The request's transaction (if any) is lost with the connection, so nothing it wrote is
        kept; CONN_HEALTH_CHECKS makes the next request open a fresh connection.
        """
        return service_unavailable(request, exception)


def service_unavailable(request, exception) -> HttpResponse | None:
    """The 503 (with Retry-After) for a database or Redis that went away, or None for any other
    exception. Views reach it through ``process_exception``; tenant routing, which queries before
    any view, calls it itself (decision 0933)."""
    if isinstance(exception, (OperationalError, InterfaceError)):
        service = "database"
        db_logger.warning("database unavailable: %s", str(exception).strip()[:500])
    elif isinstance(exception, RedisError):
        # A view that needs Redis (a sign-in throttle, a cache it cannot do without): decision 0933.
        service = "cache"
        db_logger.warning("redis unavailable: %s", str(exception).strip()[:500])
    else:
        return None
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "error": {
                    "code": "service_unavailable",
                    "message": f"The {service} is unavailable; retry shortly.",
                    "details": {"service": service},
                }
            },
            status=503,
        )
    else:
        response = HttpResponse(
            "Codex is briefly unavailable; try again in a few seconds.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = "5"
    return response


# --- Celery: task context in logs, slow queries in tasks ----------------------------------------------
def task_context_enter(task_id: str, schema: str) -> tuple:
    # Slow queries of the task are timed by the connection itself (``codex.db``).
    return (request_id_var.set(task_id or ""), firm_var.set(_firm_label(schema)))


def task_context_exit(tokens: tuple | None) -> None:
    if tokens:
        request_id_var.reset(tokens[0])
        firm_var.reset(tokens[1])
