"""Migrating many firm schemas: skip the ones already current, run the rest in parallel, stop cleanly.

Every firm is cloned from the template schema, and the template is migrated first, so a firm is
current exactly when its ``django_migrations`` rows equal the template's. One query compares an md5
of those rows across all firm schemas; a no-op deploy then costs that query instead of one
``migrate`` run (and, with django-tenants' subprocess executor, one Python start-up) per firm.

Firms that are behind are migrated by ``migrate_schemas --schema`` (django-tenants' standard
executor: each migration is atomic, PostgreSQL DDL being transactional). With ``parallel > 1``
they are split across that many child processes (``manage.py migrate_all --firms ...``), each
migrating its share one firm after another. The first failure names its firm; the others finish the
firm they are on and stop (a shared stop file), so every schema is left at a migration boundary.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import InternalError, connection

from codex.db import set_schema_to_public

from .models import Tenant

FAILED_PREFIX = "MIGRATION-FAILED "


class FirmMigrationFailed(RuntimeError):
    def __init__(self, schema: str, error: str, migrated: int, not_attempted: int):
        self.schema, self.error, self.migrated, self.not_attempted = schema, error, migrated, not_attempted
        super().__init__(
            f"migration failed in firm schema {schema}: {error} "
            f"({migrated} firm(s) migrated, {not_attempted} not attempted; every schema is at a migration boundary)"
        )


@dataclass
class Outcome:
    total: int
    behind: list[str]
    migrated: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _fingerprints(schemas: list[str]) -> dict[str, str]:
    if not schemas:
        return {}
    q = connection.ops.quote_name
    digest = "md5(coalesce(string_agg(app || '.' || name, ',' ORDER BY app, name), ''))"
    parts = [f"SELECT %s, {digest} FROM {q(s)}.django_migrations" for s in schemas]
    result: dict[str, str] = {}
    with connection.cursor() as cursor:
        # In batches: one statement per few hundred schemas keeps the query plan small.
        for start in range(0, len(parts), 200):
            chunk = parts[start : start + 200]
            cursor.execute(" UNION ALL ".join(chunk), schemas[start : start + 200])
            result.update(dict(cursor.fetchall()))
    return result


def firm_schemas() -> list[str]:
    return list(
        Tenant.objects.exclude(schema_name__in=[settings.PUBLIC_SCHEMA_NAME, settings.TENANT_BASE_SCHEMA])
        .order_by("pk")
        .values_list("schema_name", flat=True)
    )


def schemas_behind(schemas: list[str] | None = None) -> list[str]:
    """Firm schemas whose applied migrations differ from the (already migrated) template's."""
    schemas = firm_schemas() if schemas is None else schemas
    with connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        existing = {r[0] for r in cursor.fetchall()}
    missing = [s for s in schemas if s not in existing]
    if missing:
        raise RuntimeError(f"firm schemas missing from the database: {', '.join(missing[:10])}")
    template = _fingerprints([settings.TENANT_BASE_SCHEMA])[settings.TENANT_BASE_SCHEMA]
    prints = _fingerprints(schemas)
    return [s for s in schemas if prints[s] != template]


#: PostgreSQL's answer when two transactions replace the same catalog row at once. django-pgtrigger's
#: trigger SQL (the change-history triggers, decision 0800 onwards) replaces one function shared by
#: every schema, ``"public"._pgtrigger_should_ignore``, so two firms migrated in parallel through a
#: migration that adds a trigger can collide on it. The losing migration rolled back whole (each
#: migration is atomic), so migrating that firm again from its boundary is safe.
CONCURRENT_CATALOG_UPDATE = "tuple concurrently updated"
CATALOG_RETRIES = 5


def migrate_one(schema: str, verbosity: int = 0) -> None:
    """Migrate one firm; again (up to ``CATALOG_RETRIES`` times, after a short randomised wait)
    when a parallel migration of another firm replaced a shared catalog row at the same moment."""
    for attempt in range(CATALOG_RETRIES + 1):
        try:
            call_command(
                "migrate_schemas", schema_name=schema, executor="standard", interactive=False, verbosity=verbosity
            )
            break
        except InternalError as exc:
            set_schema_to_public()
            if CONCURRENT_CATALOG_UPDATE not in str(exc) or attempt == CATALOG_RETRIES:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))  # noqa: S311 - a jitter, not a secret
    set_schema_to_public()


def migrate_sequential(schemas: list[str], *, verbosity: int = 0, stop_file: Path | None = None, out=None) -> list[str]:
    """Migrate in this process, in order; raise FirmMigrationFailed naming the first failure."""
    done: list[str] = []
    for index, schema in enumerate(schemas):
        if stop_file is not None and stop_file.exists():
            break
        try:
            migrate_one(schema, verbosity)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported with its firm, then re-raised
            set_schema_to_public()
            raise FirmMigrationFailed(
                schema, f"{type(exc).__name__}: {exc}", len(done), len(schemas) - index - 1
            ) from exc
        done.append(schema)
        if out is not None:
            out.write(f"MIGRATED {schema}\n")
            out.flush()
    return done


def migrate_parallel(schemas: list[str], *, parallel: int, verbosity: int = 0) -> list[str]:
    """Spread ``schemas`` over ``parallel`` child processes; stop all at the first failure."""
    if parallel <= 1 or len(schemas) <= 1:
        return migrate_sequential(schemas, verbosity=verbosity)
    parallel = min(parallel, len(schemas))
    chunks = [schemas[i::parallel] for i in range(parallel)]
    workdir = Path(tempfile.mkdtemp(prefix="codex-migrate-"))
    stop_file = workdir / "stop"
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    children = []
    for i, chunk in enumerate(chunks):
        firms_file = workdir / f"firms-{i}.json"
        firms_file.write_text(json.dumps(chunk))
        # Output goes to files, not pipes: a child writing more than a pipe holds (64 KiB) while
        # the parent waits for it to exit would block both for ever.
        with (workdir / f"out-{i}.log").open("w") as out, (workdir / f"err-{i}.log").open("w") as err:
            children.append(
                subprocess.Popen(  # noqa: S603 - our own manage.py and arguments
                    [sys.executable, manage, "migrate_all", "--child-firms", str(firms_file)]
                    + ["--stop-file", str(stop_file), "--verbosity", str(verbosity)],
                    stdout=out,
                    stderr=err,
                    env={**os.environ},
                )
            )
    failure: tuple[str, str] | None = None
    migrated: list[str] = []
    pending = set(range(len(children)))
    while pending:
        for i in list(pending):
            if children[i].poll() is None:
                continue
            pending.discard(i)
            out_text = (workdir / f"out-{i}.log").read_text()
            err_text = (workdir / f"err-{i}.log").read_text()
            if verbosity > 1:
                sys.stdout.write(out_text)
            migrated += [line.split(" ", 1)[1] for line in out_text.splitlines() if line.startswith("MIGRATED ")]
            failed = [line[line.index(FAILED_PREFIX) :] for line in out_text.splitlines() if FAILED_PREFIX in line]
            if children[i].returncode != 0 and failure is None:
                if failed:
                    payload = json.loads(failed[0].removeprefix(FAILED_PREFIX))
                    failure = (payload["schema"], payload["error"])
                else:
                    # The child died without reporting (killed, crashed at start-up): show its output.
                    tail = (out_text.strip()[-1000:] + "\n" + err_text.strip()[-2000:]).strip()
                    failure = (
                        f"<one of {len(chunks[i])} firms of worker {i}>",
                        tail or f"exit {children[i].returncode}",
                    )
                stop_file.touch()
        time.sleep(0.05)
    shutil.rmtree(workdir, ignore_errors=True)
    if failure is not None:
        raise FirmMigrationFailed(failure[0], failure[1], len(migrated), len(schemas) - len(migrated) - 1)
    return migrated


def run_child(firms_file: Path, stop_file: Path, verbosity: int, out) -> int:
    """Body of a ``migrate_all --child-firms`` process; prints MIGRATED/FAILED lines for the parent."""
    schemas = json.loads(Path(firms_file).read_text())
    try:
        migrate_sequential(schemas, verbosity=verbosity, stop_file=stop_file, out=out)
    except FirmMigrationFailed as exc:
        # On a line of its own: django-tenants leaves "Applying x..." unterminated when a migration fails.
        out.write("\n" + FAILED_PREFIX + json.dumps({"schema": exc.schema, "error": exc.error}) + "\n")
        out.flush()
        return 1
    return 0
