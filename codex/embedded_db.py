"""The embedded PostgreSQL used when ``DATABASE_URL`` is not set.

``pgserver`` (from PyPI) ships PostgreSQL 16 binaries; we keep its data directory under ``.data/pg``
in the project, listen on a Unix socket only, and leave the server running between commands so that
``make run`` and ``make test`` start it once. ``make stop`` stops it.
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


def _server():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver  # function-level: optional heavy dependency: only when DATABASE_URL is unset

    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(DATA_DIR, cleanup_mode=None)


def ensure_running() -> str:
    """Start the embedded server if needed, create the ``codex`` database, return its URL."""
    server = _server()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    info = server.get_postmaster_info()
    socket_dir = info.socket_dir
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def stop() -> None:
    if not (DATA_DIR / "postmaster.pid").exists():
        print("embedded PostgreSQL is not running")
        return
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # pgserver makes its command wrappers at import time

    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=DATA_DIR)
    print(f"embedded PostgreSQL stopped ({DATA_DIR})")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "stop":
        stop()
    else:
        print(ensure_running())
