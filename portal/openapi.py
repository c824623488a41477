"""The portal's slice of the OpenAPI schema: the paths under ``/api/v1/portal/`` and the components
they reference. The frontend's typed client (frontend/src/api/schema.d.ts) is generated from it
(``manage.py portal_schema`` + openapi-typescript, ``make frontend-client``); a test fails when the
committed copy differs from what the code serves (tests/portal/test_frontend_client.py)."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.generators import SchemaGenerator

PREFIX = "/api/v1/portal/"


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def portal_schema() -> dict:
    full = SchemaGenerator(urlconf="codex.site.urls_tenant").get_schema(request=None, public=True)
    paths = {p: item for p, item in sorted(full["paths"].items()) if p.startswith(PREFIX)}
    wanted: set[str] = set()
    _refs(paths, wanted)
    components: dict[str, dict] = {}
    seen: set[str] = set()
    while wanted - seen:
        ref = sorted(wanted - seen)[0]
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        node = full["components"][section][name]
        components.setdefault(section, {})[name] = node
        _refs(node, wanted)
    schemes = full["components"].get("securitySchemes", {})
    components["securitySchemes"] = schemes
    return {
        "openapi": full["openapi"],
        "info": {"title": "Codex client portal API", "version": full["info"]["version"]},
        "paths": paths,
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


def portal_schema_json() -> str:
    return json.dumps(portal_schema(), indent=2, sort_keys=True, default=str) + "\n"
