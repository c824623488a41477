"""The API's JSON parser: DRF's ``JSONParser`` behind two bounds checked before parsing.

- **Size**: at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes are read. DRF reads the request stream
  itself, so Django's own check (made only when ``request.body`` is read) does not always run;
  a larger body is a 413 with the error envelope (``RequestTooLarge``).
- **Nesting depth**: Python's ``json`` parses arrays and objects recursively, so 2,000 nested
  ``[`` (4 KB) raised ``RecursionError``, a 500 (issue 27). Brackets are counted before parsing
  (outside strings); deeper than ``MAX_DEPTH`` is a 400 ``parse_error``. No body of the API nests
  deeper than a handful of levels.

Configured as the only default parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``) and named by
views that choose their parsers; DRF's parser API as documented (``parse(stream, media_type,
parser_context)``), the parsing itself is DRF's.
"""

from __future__ import annotations

import io
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .exceptions import RequestTooLarge

MAX_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


def nesting_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text ``raw`` nest deeper than ``limit``.

    Strings are removed first (a ``[`` inside one does not nest), then only brackets are kept and
    the innermost pairs removed once per level: at most ``limit`` passes, each in C. Text that is
    not balanced is left to the JSON parser, which says what is wrong with it."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    for _ in range(limit):
        if not brackets:
            return False
        brackets, removed = _INNERMOST_PAIR.subn(b"", brackets)
        if not removed:
            return False
    return _INNERMOST_PAIR.search(brackets) is not None


class BoundedJSONParser(JSONParser):
    """``JSONParser`` that refuses bodies over the size limit and JSON nested deeper than MAX_DEPTH."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(limit)
        if nesting_deeper_than(raw, self.max_depth):
            raise ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels.")
        return super().parse(io.BytesIO(raw), media_type, parser_context)
