"""Serializer fields shared by the apps' APIs, whose schema says exactly what they accept."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.validators import RegexValidator
from django.db import models
from rest_framework import serializers

CURRENCY_PATTERN = r"^[A-Za-z]{3}$"

# The URLs the API takes: an http(s) or ftp(s) URL with a host name (labels of letters, digits and
# inner hyphens, a top-level domain of letters), an optional port, then a path, query or fragment
# of the characters a URI allows. Django's URLValidator alone also takes characters no URI has
# (``/[1``) and OpenAPI's ``format: uri`` alone any scheme (``mailto:x``): the API checks both and
# its schema says both (``codex.api.schema``), so each refuses what the other calls invalid.
# RFC 3986 ``pchar``: unreserved, sub-delims, ":", "@" or a %-escape
_URI_CHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
HTTP_URL_PATTERN = (
    r"^(?:[hH][tT][tT][pP][sS]?|[fF][tT][pP][sS]?)://"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
    r"\.[a-zA-Z]{2,63}(?::[0-9]{1,5})?"
    rf"(?:/(?:{_URI_CHAR}|/)*)?(?:\?(?:{_URI_CHAR}|[/?])*)?(?:#(?:{_URI_CHAR}|[/?])*)?$"
)


class HttpUrlField(serializers.URLField):
    """Django's URL check and ``HTTP_URL_PATTERN``; the serializer field of models' URL fields."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(HTTP_URL_PATTERN, message="Enter a valid URL."))


class CurrencyField(serializers.RegexField):
    """A three-letter ISO 4217 code (``usd`` is read as ``USD``); the schema carries the pattern.

    The services' own check (``len == 3 and isalpha()`` after ``strip().upper()``) also lets
    padded or non-ASCII letters through (``" usd"``, ``"ÁBC"``): the API is stricter, and says so.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(CURRENCY_PATTERN, **kwargs)
        self.error_messages["invalid"] = "Use a three-letter ISO currency code such as USD."

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return value.upper() if value else value


_numbers_refused = False


def refuse_numbers_as_text() -> None:
    """JSON types as the schema gives them.

    DRF's ``CharField`` (and its subclasses: e-mail, slug, regex, URL) takes a JSON number and
    keeps its text (``{"notes": 0}`` stored ``"0"``); the schema says string, so a number is a
    400 ``Not a valid string.`` naming the field (decision 0503). Installed once, for every
    serializer, by ``codex.api`` (imported by DRF's settings before any API view runs).

    The two methods are replaced on DRF's public classes (every serializer of every app, and
    DRF's own subclasses, must refuse alike). mypy is told so on those two lines only: DRF's stubs
    type ``data`` as the field's own type, which is exactly what JSON does not promise here."""
    global _numbers_refused
    if _numbers_refused:
        return
    _numbers_refused = True
    original = serializers.CharField.to_internal_value

    def to_internal_value(self: serializers.CharField, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return original(self, data)

    serializers.CharField.to_internal_value = to_internal_value  # type: ignore[method-assign, assignment]

    # A list of related ids must be a JSON array: DRF iterates any iterable, so ``{}`` was read
    # as an empty list (found by API fuzzing's coverage phase).
    original_many = serializers.ManyRelatedField.to_internal_value

    def many_to_internal_value(self: serializers.ManyRelatedField, data: object) -> Iterable[object]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return original_many(self, data)

    serializers.ManyRelatedField.to_internal_value = many_to_internal_value  # type: ignore[method-assign, assignment]
    serializers.ModelSerializer.serializer_field_mapping[models.URLField] = HttpUrlField
