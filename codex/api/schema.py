"""OpenAPI: describe every response, including errors.

A drf-spectacular postprocessing hook adds the error envelope
(``{"error": {"code", "message", "details"}}``) to every operation for the statuses any endpoint
can answer: 400 bad input, 401 no or bad credentials, 403 role, scope, suspended firm or read-only
support session, 404 unknown object (or another firm's), 429 rate limit (with ``Retry-After``);
and for writes also 402 plan limits, 409 conflicts, 415 unsupported body types. Statuses an
operation already documents are left as they are.
"""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from .fields import HTTP_URL_PATTERN

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
    "413": "The body is larger than the server accepts (`details.limit_bytes`).",
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


# Rules across fields that a serializer cannot state (e.g. "only tasks have a due date"), added to a
# component by the app that enforces them (``add_component_constraint`` in its ``ready()``).
_COMPONENT_CONSTRAINTS: dict[str, dict] = {}


def add_component_constraint(component: str, constraint: dict) -> None:
    """Merge ``constraint`` (e.g. ``{"oneOf": [...]}``) into the schema component ``component``."""
    _COMPONENT_CONSTRAINTS[component] = constraint


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for component, constraint in _COMPONENT_CONSTRAINTS.items():
        if component in schemas:
            schemas[component] = {**schemas[component], **constraint}
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
            for status, response in responses.items():
                # An error status an operation declares by its description only gets the envelope.
                if status[0] in "45" and "content" not in response:
                    response.update(_error_response(response.get("description", ""), status))
    return result


def _decimal_pattern(pattern: str, *, unsigned: bool) -> str:
    """drf-spectacular's ``^-?\\d{0,W}(?:\\.\\d{0,D})?$`` also matches ``""`` and ``"."``, which DRF
    refuses: at least one digit, before or after the point; no sign when the minimum is >= 0."""
    match = re.fullmatch(r"\^-\?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,(\d+)\}\)\?\$", pattern)
    if match is None:
        return pattern
    whole, places = match.groups()
    sign = "" if unsigned else "-?"
    if places == "0":
        return rf"^{sign}\d{{1,{whole}}}\.?$"
    return rf"^{sign}(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"


_TRIMMED = "x-codex-trimmed-text"
# The characters str.strip() removes (DRF trims text with it), spelled out: a pattern's ``\s`` is
# read differently by ECMA 262 (no "\x85") and by Schemathesis' validator (ASCII only), so text of
# "\x85" alone passed the schema and was refused as blank.
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_NOT_SPACE = "[^" + _SPACE[1:]


class CodexAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with field schemas that say exactly what the API accepts.

    - a decimal sent as a string with ``min_value >= 0`` has no minus sign in its pattern
      (drf-spectacular's pattern always allows one);
    - a URL field has the pattern of the URLs Django's validator accepts;
    - required text that DRF trims has a character other than whitespace;
    - the length of text that DRF trims is bounded after trimming, as DRF checks it.
    """

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and "pattern" in schema:
            schema["pattern"] = _decimal_pattern(
                schema["pattern"], unsigned=field.min_value is not None and field.min_value >= 0
            )
        if isinstance(field, serializers.URLField) and direction == "request":
            schema["pattern"] = HTTP_URL_PATTERN
        if type(field) is serializers.CharField and direction == "request" and field.trim_whitespace:
            schema[_TRIMMED] = True  # read (and removed) by _insert_field_validators below
        return schema

    def _insert_field_validators(self, field, schema):
        # After drf-spectacular's own (a RegexValidator's pattern, maxLength), so a field's own
        # pattern is kept. The marker is taken off first: for blank-or-pattern text drf-spectacular
        # moves the schema into a oneOf, where it would be left in the published schema.
        trimmed = schema.pop(_TRIMMED, False)
        super()._insert_field_validators(field, schema)
        if not trimmed or "pattern" in schema or "enum" in schema or "oneOf" in schema:
            return
        if field.max_length is not None and field.max_length >= 2:
            # DRF trims before it checks the length: "Ada" plus 200 spaces fits a max_length of 100
            # (the external fuzzing run sent such text; the schema's maxLength called it invalid).
            # The pattern bounds what is left after trimming; white space around it is free.
            core = rf"{_NOT_SPACE}(?:[\s\S]{{0,{field.max_length - 2}}}{_NOT_SPACE})?"
            schema.pop("maxLength", None)
            around = f"{_SPACE}*"
            schema["pattern"] = f"^{around}(?:{core})?{around}$" if field.allow_blank else f"^{around}{core}{around}$"
        elif not field.allow_blank:
            # DRF trims text before its checks: "  " is blank, refused (drf-spectacular says only
            # minLength 1). Unanchored: the text contains something other than whitespace.
            schema["pattern"] = _NOT_SPACE

    def is_deprecated(self):
        # @codex.api.lifecycle.deprecated on the handler or the view (also sends the headers).
        from .lifecycle import deprecation_of

        action = getattr(self.view, "action", None)
        return deprecation_of(self.view, self.method, action) is not None or super().is_deprecated()

    def _get_request_for_media_type(self, serializer, direction="request"):
        # A raw request schema (a dict) that requires properties (in each of its alternatives)
        # requires a body, as drf-spectacular decides for serializers with required fields.
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if isinstance(serializer, dict) and not required:
            alternatives = serializer.get("oneOf") or [serializer]
            required = all(alternative.get("required") for alternative in alternatives)
        return schema, required
