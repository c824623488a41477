"""OpenAPI: describe every response, including errors.

A drf-spectacular postprocessing hook adds the error envelope
(``{"error": {"code", "message", "details"}}``) to every operation for the statuses any endpoint
can answer: 400 bad input, 401 no or bad credentials, 403 role, scope, suspended firm or read-only
support session, 404 unknown object (or another firm's), 429 rate limit (with ``Retry-After``);
and for writes also 402 plan limits, 409 conflicts, 415 unsupported body types. Statuses an
operation already documents are left as they are.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "not_found"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

_ALWAYS = {
    "400": "Invalid input: `details` maps each field to its errors.",
    "401": "Missing, unknown, expired or revoked credentials.",
    "403": "Authenticated, but not allowed (role, key scope, suspended firm, read-only session).",
    "404": "No such object in this firm.",
    "429": "Rate limited: retry after the `Retry-After` header's seconds.",
}
_WRITES = {
    "402": "The firm's plan does not allow this (limit or feature).",
    "409": "Conflicts with the current state.",
    "415": "Unsupported request body type.",
}
_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _error_response(description: str, status: str) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
        }
    return response


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = ERROR_SCHEMA
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = dict(_ALWAYS)
            if method in {"post", "put", "patch", "delete"}:
                statuses.update(_WRITES)
            for status, description in statuses.items():
                responses.setdefault(status, _error_response(description, status))
    return result
