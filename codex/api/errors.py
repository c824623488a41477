"""One error envelope for the whole API: ``{"error": {"code", "message", "details"}}``.

Domain exceptions are mapped here, in one place. Unhandled exceptions are logged and answered with
a 500 envelope by the URLconfs' ``handler500``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import ApiError, Conflict, PlanLimitExceeded, RequestTooLarge

__all__ = ["ApiError", "Conflict", "PlanLimitExceeded", "RequestTooLarge", "exception_handler"]

logger = logging.getLogger("codex.api")


def request_too_large_response(limit_bytes: int) -> JsonResponse:
    """The envelope of ``RequestTooLarge`` where Django, not DRF, refused the body (``handler400``)."""
    exc = RequestTooLarge(limit_bytes)
    body = {"error": {"code": exc.error_code, "message": str(exc.detail), "details": exc.details}}
    return JsonResponse(body, status=exc.status_code)


_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    429: "throttled",
}

_EXCEPTION_MAPPERS: list = []


def register_exception(exc_class, mapper) -> None:
    """Let an app map its own exception (e.g. billing's PlanLimitExceeded) to an ApiError."""
    _EXCEPTION_MAPPERS.append((exc_class, mapper))


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        msg = _first_message(value)
        return msg if key in ("non_field_errors", "detail") else f"{key}: {msg}"
    return str(detail)


def exception_handler(exc, context):
    for exc_class, mapper in _EXCEPTION_MAPPERS:
        if isinstance(exc, exc_class):
            exc = mapper(exc)
            break
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unhandled: Django logs it and handler500 answers with the envelope

    if isinstance(exc, ApiError):
        body = {"code": exc.error_code, "message": str(exc.detail), "details": exc.details}
    elif isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {"code": "invalid", "message": _first_message(details), "details": details}
    else:
        code = getattr(exc, "default_code", None) or _CODES.get(response.status_code, "error")
        if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            code = "throttled"
        details = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details["retry_after"] = int(exc.wait) + (0 if exc.wait == int(exc.wait) else 1)
        detail = exc.detail if hasattr(exc, "detail") else str(exc)
        body = {"code": code, "message": _first_message(detail), "details": details}
    response.data = {"error": body}
    return response


def api_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status_code)


def envelope_response(status_code: int, code: str, message: str, details: dict | None = None) -> Response:
    return Response({"error": {"code": code, "message": message, "details": details or {}}}, status=status_code)
