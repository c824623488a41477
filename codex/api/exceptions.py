"""The API's own exceptions, each with its status, code and details; mapped to the error envelope
in one place (``codex.api.errors.exception_handler``). Only DRF's exceptions module is imported
here, so parsers and other pieces DRF's settings load can raise them."""

from __future__ import annotations

from rest_framework import exceptions


class ApiError(exceptions.APIException):
    """Raise from services' callers when a domain error has its own status and code."""

    def __init__(self, *, status_code: int, code: str, message: str, details: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details or {}


class PlanLimitExceeded(ApiError):
    def __init__(self, message: str, details: dict | None = None, code: str = "plan_limit_exceeded"):
        super().__init__(status_code=402, code=code, message=message, details=details)


class RequestTooLarge(ApiError):
    """A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (read by the API's parser or by Django)."""

    def __init__(self, limit_bytes: int):
        super().__init__(
            status_code=413,
            code="request_too_large",
            message=f"The body is larger than {limit_bytes} bytes.",
            details={"limit_bytes": limit_bytes},
        )


class Conflict(ApiError):
    def __init__(self, message: str, details: dict | None = None, code: str = "conflict"):
        super().__init__(status_code=409, code=code, message=message, details=details)
