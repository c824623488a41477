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
import json
import logging
import math
import os
import re
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject, empty

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


# ``json.dumps(data, default=str, ensure_ascii=False)`` builds this encoder anew for every line.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
# ``JSONEncoder.encode`` also builds its C iterator anew for every call (about a quarter of a line's
# encoding cost): the same C encoder with the same options, built once. Without circular-reference
# markers: a value that contains itself ends in a RecursionError, which ``logging`` reports as any
# formatting error. Python builds without the C accelerator use the encoder above.
_C_ENCODE = (
    json.encoder.c_make_encoder(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    if json.encoder.c_make_encoder is not None
    else None
)


def _json_line(data: dict) -> str:
    if _C_ENCODE is None:
        return _ENCODER.encode(data)
    return "".join(_C_ENCODE(data, 0))


def _value(value, _str=json.encoder.encode_basestring) -> str:
    """One value as ``_C_ENCODE`` writes it: strings, ints and finite floats directly (what the
    encoder itself does for these exact types), anything else through the encoder."""
    kind = type(value)
    if kind is str:
        return _str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return "".join(_C_ENCODE(value, 0))


_HEAD = ("time", "level", "logger", "message")
_FIELD_KEYS: dict[tuple, tuple | None] = {}


def _field_keys(fields: tuple) -> tuple | None:
    """``", "<key>": `` for each field, encoded once per tuple of names; None when a name is one of
    the line's first four keys (a dict would overwrite it in place: left to the encoder)."""
    keys = _FIELD_KEYS.get(fields, _FIELD_KEYS)
    if keys is _FIELD_KEYS:
        clash = any(type(name) is not str or name in _HEAD for name in fields)
        keys = None if clash else tuple(f", {json.encoder.encode_basestring(name)}: " for name in fields)
        if len(_FIELD_KEYS) < 64:
            _FIELD_KEYS[fields] = keys
    return keys


def _request_line(head: tuple, keys: tuple, fields: tuple, attributes: dict) -> str:
    """The request line's JSON, the same text ``_json_line`` writes for the dict of ``_HEAD`` and
    the fields, written piece by piece: the keys are encoded once, and no dict is built for a line
    (tests/ops/test_observability.py compares the two)."""
    time_, level, logger, message = head
    parts = [
        '{"time": ',
        _value(time_),
        ', "level": ',
        _value(level),
        ', "logger": ',
        _value(logger),
        ', "message": ',
        _value(message),
    ]
    append = parts.append
    for key, name in zip(keys, fields, strict=True):
        append(key)
        append(_value(attributes[name]))
    append("}")
    return "".join(parts)


_PLAIN_RECORD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
# ``_codex_fields``: the names of the fields ``_log_request`` gave its record (never written out).
_RECORD_ATTRIBUTES = _PLAIN_RECORD | {"message", "asctime", "_codex_fields"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
    ``message``, then every field the record was given (``extra=``, and ``request_id``/``firm`` from
    ``RequestContextFilter``), and ``exc_info``/``stack_info`` when there are.

    Written for the request log, which formats a line per request: python-json-logger, used
    before, took about 110 µs a line on the benchmark machine (it re-parses its format string and
    walks the record for every line); this takes a fraction of that (docs/benchmarks.md).
    """

    def format(self, record: logging.LogRecord) -> str:
        head = (self._time(record), record.levelname, record.name, record.getMessage())
        attributes = record.__dict__
        fields = attributes.get("_codex_fields")
        fast = fields is not None and len(attributes) == len(_PLAIN_RECORD) + len(fields) + 1
        if fast and not (record.exc_info or record.exc_text or record.stack_info) and _C_ENCODE is not None:
            keys = _field_keys(fields)
            if keys is not None:
                return _request_line(head, keys, fields, attributes)
        data = dict(zip(_HEAD, head, strict=True))
        if fast:
            # The request line, as ``_log_request`` made it and nothing added since (a filter or
            # another formatter that adds an attribute changes the count): its fields by name, in
            # their order, with any value a filter changed, without testing every attribute.
            data.update(zip(fields, map(attributes.__getitem__, fields), strict=True))
        else:
            for key, value in attributes.items():
                if key not in _RECORD_ATTRIBUTES:
                    data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return _json_line(data)

    def _time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second_cache
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second_cache = cached
        return f"{cached[1]}{self._millis[min(int(record.msecs), 999)]}"

    # ".000Z" .. ".999Z": the milliseconds part of ``time``, formatted once.
    _millis = tuple(f".{ms:03d}Z" for ms in range(1000))

    _second_cache: tuple[int, str] = (-1, "")


class ConsoleHandler(logging.StreamHandler):
    """``logging.StreamHandler`` (one formatted record per line, flushed), taking its lock once per
    record: the stock ``emit()`` flushes through ``flush()``, which takes the lock ``handle()``
    already holds a second time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            stream = self.stream
            stream.write(msg + self.terminator)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's contract: handleError() reports it on stderr
            self.handleError(record)


def skip_unused_record_fields() -> None:
    """Apply the logging module's documented optimisations for fields no Codex log line shows
    (Python docs, logging HOWTO, "Optimization"): no caller lookup (a walk up the stack for file,
    line and function name), no thread, multiprocessing or asyncio task names. Neither format
    (plain, JSON) nor gunicorn's own uses them; the process id stays (gunicorn's error log prints
    it). Called in each gunicorn worker (``post_worker_init``): about 41,000 instructions of every
    request's log line (decision 0704)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False


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
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        # Nobody looked at the user while serving the request. Without a session cookie there is
        # none to name (API keys and bearer tokens replace the lazy user with the real one), so
        # the log does not pay a session and user lookup for it.
        session = getattr(request, "session", None)
        if session is None or session.session_key is None:
            return ""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    api_key = getattr(user, "api_key", None)
    if api_key is not None:
        return f"apikey:{api_key.prefix}"
    return str(user.pk)


def _log_request(level: int, message: str, fields: dict) -> None:
    """The request line, as ``request_logger.log(level, message, extra=fields)`` would log it,
    without ``Logger._log``'s generic steps: no caller lookup (the record names this module and
    function, line 0) and no per-key checks of ``extra`` (these keys are fixed and none is a
    ``LogRecord`` attribute). The record comes from the installed record factory and goes through
    the logger's filters and handlers as any other (decision 0704, fourth pass)."""
    record = logging.getLogRecordFactory()(request_logger.name, level, __file__, 0, message, (), None, "__call__")
    attributes = record.__dict__
    attributes.update(fields)
    attributes["_codex_fields"] = tuple(fields)
    request_logger.handle(record)


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
            # ``response[REQUEST_ID_HEADER] = request_id`` without its checks: a request id is a
            # token of ``_REQUEST_ID_RE`` (ASCII, no line breaks) or hex digits.
            response.headers._store["x-request-id"] = (REQUEST_ID_HEADER, request_id)
            return response
        finally:
            duration = time.perf_counter() - start
            tenant = getattr(request, "tenant", None)
            firm = tenant.slug if tenant is not None else ""
            route = _route_of(request)
            metrics.observe_request(request.method, route, status, duration)
            level = logging.ERROR if status >= 500 else logging.INFO
            if request_logger.isEnabledFor(level):
                _log_request(
                    level,
                    f"{request.method} {route} {status}",
                    {
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
        """The database went away mid-request: a 503 with Retry-After, not a 500.

        The request's transaction (if any) is lost with the connection, so nothing it wrote is
        kept; CONN_HEALTH_CHECKS makes the next request open a fresh connection.
        """
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        db_logger.warning("database unavailable: %s", str(exception).strip()[:500])
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {
                    "error": {
                        "code": "service_unavailable",
                        "message": "The database is unavailable; retry shortly.",
                        "details": {},
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
