"""Schemathesis CLI hooks for the external run (``SCHEMATHESIS_HOOKS=tests.security.fuzz_hooks``,
set by ``fuzz_live.py``): the same knowledge the in-process run has (``fuzz_support``), with the
planted objects' ids from ``CODEX_FUZZ_IDS`` (JSON)."""

from __future__ import annotations

import json
import os

import schemathesis

from tests.security.fuzz_support import name_existing_objects, register_date_format

register_date_format()
IDS = json.loads(os.environ.get("CODEX_FUZZ_IDS", "{}"))


@schemathesis.hook
def map_case(ctx, case):
    if IDS:
        name_existing_objects(case, IDS, plant_paths=True)
    return case
