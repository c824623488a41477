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

from django.conf import settings
from django.utils import timezone

from .backup import ExportError, _libpq_env, pg_binary

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
