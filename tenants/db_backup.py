"""Whole-database backups: ``pg_dump --format=custom`` of every schema into ``CODEX_BACKUP_DIR``
(daily by beat, or ``manage.py backup_database``), dumps older than ``CODEX_BACKUP_KEEP_DAYS``
pruned, and the age of the newest one for the operators' console (an alert past
``CODEX_BACKUP_MAX_AGE_HOURS``). A deployment with pgBackRest or WAL-G keeps those as well
(docs/operations.md); this is the embedded and compose default.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from .backup import ExportError, _libpq_env, pg_binary
from .selectors import firm_schema_names

PREFIX = "codex-"
SUFFIX = ".dump"


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime
    size: int


def _directory(directory: Path | str | None) -> Path:
    return Path(directory or settings.CODEX_BACKUP_DIR)


def backups_list(*, directory: Path | str | None = None) -> list[Backup]:
    """The complete dumps in the directory, newest first (a dump still being written is not one)."""
    found = []
    for path in _directory(directory).glob(f"{PREFIX}*{SUFFIX}"):
        stamp = path.name.removeprefix(PREFIX).removesuffix(SUFFIX)
        try:
            taken_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            continue
        found.append(Backup(path=path, taken_at=taken_at, size=path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def database_backup(*, directory: Path | str | None = None, now: datetime | None = None) -> Backup:
    """Dump the whole database; prune dumps older than the retention (the newest is always kept).
    Written to a temporary name and renamed when complete, so a failed dump never counts as a
    backup. Raises ExportError when pg_dump fails."""
    now = now or timezone.now()
    target_dir = _directory(directory)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"
    partial = path.with_suffix(".partial")
    args, env = _libpq_env()
    # Our own binary and connection settings, no user input.
    proc = subprocess.run(  # noqa: S603
        [pg_binary("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(partial), *args],
        capture_output=True,
        env=env,
        timeout=6 * 3600,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ExportError(f"pg_dump failed: {proc.stderr.decode(errors='replace')[:2000]}")
    partial.rename(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    keep_after = now - timedelta(days=settings.CODEX_BACKUP_KEEP_DAYS)
    for old in backups_list(directory=target_dir)[1:]:
        if old.taken_at < keep_after:
            old.path.unlink(missing_ok=True)
            old.path.with_name(old.path.name + ".sha256").unlink(missing_ok=True)
    return backups_list(directory=target_dir)[0]


@dataclass(frozen=True)
class BackupStatus:
    last: Backup | None
    age: timedelta | None
    too_old: bool


def backup_status(*, directory: Path | str | None = None, now: datetime | None = None) -> BackupStatus:
    """The newest backup and its age; ``too_old`` when there is none or it is older than
    CODEX_BACKUP_MAX_AGE_HOURS."""
    backups = backups_list(directory=directory)
    if not backups:
        return BackupStatus(last=None, age=None, too_old=True)
    age = (now or timezone.now()) - backups[0].taken_at
    return BackupStatus(last=backups[0], age=age, too_old=age > timedelta(hours=settings.CODEX_BACKUP_MAX_AGE_HOURS))


@dataclass
class DrillReport:
    backup: Path
    scratch_database: str
    tables: int
    rows: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


_TABLES_SQL = (
    "SELECT table_schema, table_name FROM information_schema.tables "
    "WHERE table_type = 'BASE TABLE' AND table_schema = ANY(%s) ORDER BY 1, 2"
)


def _table_fingerprints(cursor, schemas: list[str]) -> dict[str, tuple[int, str]]:
    """Row count and md5 of the rows (as text, in a stable order) of every table of ``schemas``."""
    cursor.execute(_TABLES_SQL, [schemas])
    fingerprints = {}
    for schema, table in cursor.fetchall():
        qualified = f'"{schema}"."{table}"'
        cursor.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {qualified} t"  # noqa: S608
        )
        fingerprints[f"{schema}.{table}"] = tuple(cursor.fetchone())
    return fingerprints


def _connect(dbname: str) -> psycopg.Connection:
    db = connection.settings_dict
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or None
    return psycopg.connect(
        dbname=dbname,
        host=host,
        port=db.get("PORT") or None,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        autocommit=True,
    )


def restore_drill(*, backup: Backup | None = None, keep: bool = False) -> DrillReport:
    """Restore a dump (the newest by default) into a scratch database and compare, table by table,
    the row count and a checksum of the rows with this database, for the public schema and every
    firm's. Run it right after a backup, on a quiet database: rows written since the dump show up
    as differences. The scratch database is dropped afterwards unless ``keep``. Raises ExportError
    if there is no dump, its checksum file does not match, or pg_restore fails."""
    backup = backup or next(iter(backups_list()), None)
    if backup is None:
        raise ExportError("No database backup to restore: run `manage.py backup_database` first.")
    recorded = backup.path.with_name(backup.path.name + ".sha256").read_text().split()[0]
    if hashlib.sha256(backup.path.read_bytes()).hexdigest() != recorded:
        raise ExportError(f"{backup.path.name} does not match its recorded SHA-256: the file is damaged.")
    source = connection.settings_dict["NAME"]
    scratch = f"{source}_restore_drill"[:63]
    with _connect(source) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        args, env = _libpq_env()
        args[args.index("--dbname") + 1] = scratch
        proc = subprocess.run(  # noqa: S603 - our own binary and settings
            [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", *args, str(backup.path)],
            capture_output=True,
            env=env,
            timeout=6 * 3600,
        )
        if proc.returncode != 0:
            raise ExportError(f"pg_restore failed: {proc.stderr.decode(errors='replace')[:2000]}")
        schemas = [settings.PUBLIC_SCHEMA_NAME, *firm_schema_names()]
        with connection.cursor() as cursor:
            expected = _table_fingerprints(cursor, schemas)
        with _connect(scratch) as restored, restored.cursor() as cursor:
            found = _table_fingerprints(cursor, schemas)
    finally:
        if not keep:
            with _connect(source) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
    mismatches = []
    for table, (count, digest) in expected.items():
        if table not in found:
            mismatches.append(f"{table}: missing from the restore")
        elif found[table] != (count, digest):
            mismatches.append(f"{table}: {count} rows here, {found[table][0]} restored (checksums differ)")
    return DrillReport(
        backup=backup.path,
        scratch_database=scratch,
        tables=len(expected),
        rows=sum(count for count, _ in expected.values()),
        mismatches=mismatches,
    )
