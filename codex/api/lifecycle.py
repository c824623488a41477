"""API lifecycle: the version on every API response, and deprecation of operations.

- Every response under ``/api/`` carries ``API-Version: <CODEX_API_VERSION>`` (the OpenAPI document's
  ``info.version``), also errors and answers given before a view ran (401, 404, 429).
- An operation marked with ``@deprecated(since=..., sunset=..., link=...)`` answers with
  ``Deprecation: @<epoch seconds>`` (RFC 9745), ``Sunset: <HTTP-date>`` (RFC 8594) and
  ``Link: <doc>; rel="deprecation"``, and is ``deprecated: true`` in the OpenAPI schema with those
  headers documented. The policy (docs/api.md): at least six months between the announcement and the
  sunset; ``deprecated`` refuses a shorter notice at import time.
- Fields of a serializer kept for an older client (``@deprecated_fields(field_deprecation(...),
  "name")``) are ``deprecated: true`` in the schema, their description saying the sunset and what to
  read instead; the operation itself
  stays current, so no ``Deprecation`` header is sent for them (RFC 9745 deprecates a resource, and a
  client would read it as the whole operation going away). Same notice rule (decision 1350).

A tiny middleware of its own (not one of the shared request-path middlewares) because the version
must also be on responses that no DRF view produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema_serializer

API_VERSION_HEADER = "API-Version"
MIN_NOTICE = timedelta(days=183)  # six months


@dataclass(frozen=True)
class Deprecation:
    since: date
    sunset: date
    link: str = ""

    def note(self, instead: str) -> str:
        """The sentence a deprecated field's help text ends with."""
        return f"Deprecated since {self.since.isoformat()}; removed after {self.sunset.isoformat()}. {instead}"

    def headers(self) -> dict[str, str]:
        since = datetime(self.since.year, self.since.month, self.since.day, tzinfo=UTC)
        sunset = datetime(self.sunset.year, self.sunset.month, self.sunset.day, tzinfo=UTC)
        headers = {"Deprecation": f"@{int(since.timestamp())}", "Sunset": http_date(sunset.timestamp())}
        if self.link:
            headers["Link"] = f'<{self.link}>; rel="deprecation"; type="text/html"'
        return headers


def _notice_check(since: date, sunset: date) -> None:
    if sunset - since < MIN_NOTICE:
        raise ValueError(f"a deprecation needs at least six months' notice: {since} to {sunset}")


def deprecated(*, since: date, sunset: date, link: str = ""):
    """Mark an API view's handler (``def get``, a viewset action) or a whole view class."""
    _notice_check(since, sunset)

    def mark(target):
        target.codex_deprecation = Deprecation(since=since, sunset=sunset, link=link)
        return target

    return mark


def field_deprecation(*, since: date, sunset: date, link: str = "") -> Deprecation:
    """A deprecation of fields (``deprecated_fields``); refuses less than six months' notice."""
    _notice_check(since, sunset)
    return Deprecation(since=since, sunset=sunset, link=link)


def deprecated_fields(deprecation: Deprecation, *names: str):
    """Mark fields of a serializer class deprecated (kept for v1's older clients until the sunset):
    ``deprecated: true`` in the OpenAPI schema; their help text says the sunset and what to use
    instead (``Deprecation.note``). The class keeps the marks in ``codex_deprecated_fields``."""

    def mark(serializer_class):
        missing = set(names) - set(serializer_class().fields)
        if missing:
            raise ValueError(f"{serializer_class.__name__} has no field {sorted(missing)}")
        serializer_class.codex_deprecated_fields = {
            **getattr(serializer_class, "codex_deprecated_fields", {}),
            **dict.fromkeys(names, deprecation),
        }
        return extend_schema_serializer(deprecate_fields=list(names))(serializer_class)

    return mark


def deprecation_of(view, method: str, action: str | None = None) -> Deprecation | None:
    """The deprecation of ``view`` (class or instance) for an HTTP ``method`` (or viewset action)."""
    handler = getattr(view, action or method.lower(), None)
    return getattr(handler, "codex_deprecation", None) or getattr(view, "codex_deprecation", None)


class ApiLifecycleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith("/api/"):
            response[API_VERSION_HEADER] = settings.CODEX_API_VERSION
            deprecation = getattr(request, "codex_deprecation", None)
            if deprecation is not None:
                for name, value in deprecation.headers().items():
                    response[name] = value
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None)  # DRF's as_view() sets cls (and actions)
        if view_class is not None:
            actions = getattr(view_func, "actions", None) or {}
            method = request.method.lower()
            deprecation = deprecation_of(view_class, method, actions.get(method))
            if deprecation is not None:
                request.codex_deprecation = deprecation
        return None


def document_lifecycle(result, generator, request, public):
    """drf-spectacular postprocessing hook: the version header on every response, and the
    deprecation headers on the responses of deprecated operations."""
    version = {
        API_VERSION_HEADER: {
            "schema": {"type": "string", "example": settings.CODEX_API_VERSION},
            "description": "API version.",
        }
    }
    deprecation_headers = {
        "Deprecation": {
            "schema": {"type": "string", "example": "@1767225600"},
            "description": "RFC 9745: deprecated since.",
        },
        "Sunset": {"schema": {"type": "string"}, "description": "RFC 8594: the operation is removed after this date."},
        "Link": {"schema": {"type": "string"}, "description": 'rel="deprecation": what to use instead.'},
    }
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for response in operation["responses"].values():
                headers = response.setdefault("headers", {})
                headers.update(version)
                if operation.get("deprecated"):
                    headers.update(deprecation_headers)
    return result
