"""The frontend's typed API client is generated from the portal's OpenAPI slice: `make test` fails
when the committed copy is stale (regenerate with `make frontend-client`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from django.conf import settings

from portal.openapi import portal_schema_json

FRONTEND = Path(settings.BASE_DIR) / "frontend"


def test_committed_openapi_slice_is_current():
    committed = (FRONTEND / "src/api/openapi.json").read_text()
    assert committed == portal_schema_json(), "the portal API changed: run `make frontend-client` and commit"


def test_generated_typescript_client_is_current(tmp_path):
    tool = FRONTEND / "node_modules/.bin/openapi-typescript"
    if not tool.exists():
        # make test builds the portal with npm (make frontend): without it the portal is not tested
        assert shutil.which("npm") is not None, "npm is needed to check the generated client: install Node.js/npm"
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FRONTEND, check=True)
    out = tmp_path / "schema.d.ts"
    subprocess.run([str(tool), "src/api/openapi.json", "-o", str(out)], cwd=FRONTEND, check=True, capture_output=True)
    assert out.read_text() == (FRONTEND / "src/api/schema.d.ts").read_text(), (
        "frontend/src/api/schema.d.ts is stale: run `make frontend-client` and commit"
    )
