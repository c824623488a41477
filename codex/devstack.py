"""``make run`` and ``make stop``: the web server, the live stream, a Celery worker and beat, next to
the databases.

``python -m codex.devstack run --host H --port P`` makes sure PostgreSQL and Redis run (the embedded
ones unless ``DATABASE_URL`` / ``REDIS_URL`` are set), then starts ``runserver``, the live stream
(uvicorn on port P+1, ``codex.live.server``), ``celery worker`` and ``celery beat``, each in a process
group of its own, and records their pids in ``.data/run/devstack.json``. Ctrl-C (or SIGTERM) stops
the four and nothing else: the databases keep running for the next command. If one of the four exits,
the others are stopped too.

``python -m codex.devstack stop`` stops what ``run`` started (from any terminal, as any user that
may signal it), then the embedded Redis and PostgreSQL, and says what it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# CODEX_RUN_DIR: another place for the pid record, so a second stack (a test's) can run beside
# a developer's `make run` in the same checkout.
RUN_DIR = Path(os.environ.get("CODEX_RUN_DIR", BASE_DIR / ".data" / "run"))
STATE_FILE = RUN_DIR / "devstack.json"
GRACE_SECONDS = 10


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def preflight(host: str, port: int) -> None:
    """One line and exit 1 when the web port or the live stream's (the next one) is taken (before
    any set-up work)."""
    for taken in (port, port + 1):
        if not port_free(host, taken):
            raise SystemExit(
                f"port {taken} on {host} is taken (another `make run`?): `make stop`, or `make run PORT={port + 2}`"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(pids: list[int]) -> None:
    """SIGTERM to each process group (a process and its children) at once; SIGKILL to those left
    after the grace period."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + GRACE_SECONDS
    while any(_group_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _databases_env() -> dict[str, str]:
    """The environment of the three processes: the databases' URLs, resolved once here, so the
    children do not race to start the embedded servers."""
    env = dict(os.environ)
    if "DATABASE_URL" not in env:
        from codex.embedded_db import ensure_running as ensure_db

        env["DATABASE_URL"] = ensure_db()
    if not env.get("REDIS_URL"):
        from codex.embedded_redis import ensure_running as ensure_redis

        env["REDIS_URL"] = ensure_redis()
    return env


def run(host: str, port: int) -> int:
    preflight(host, port)
    env = _databases_env()
    live_port = port + 1
    # Pages open the stream on its own port in development (production: same origin, via the proxy).
    env.setdefault("LIVE_STREAM_URL", f"http://localhost:{live_port}/live/stream")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    commands = {
        "web": [python, "manage.py", "runserver", f"{host}:{port}"],
        "live": [
            python, "-m", "uvicorn", "codex.live.server:app", "--host", host, "--port", str(live_port),
            "--no-access-log", "--timeout-graceful-shutdown", "2",
        ],
        "worker": [python, "-m", "celery", "-A", "codex", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [
            python, "-m", "celery", "-A", "codex", "beat", "--loglevel", "INFO",
            "--schedule", str(RUN_DIR / "celerybeat-schedule"),
        ],
    }  # fmt: skip
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop_all(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    code = 0
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, cwd=BASE_DIR, env=env, start_new_session=True)  # noqa: S603
        STATE_FILE.write_text(
            json.dumps({"supervisor": os.getpid(), **{name: p.pid for name, p in children.items()}, "port": port})
        )
        print(
            f"web, live, worker and beat are running (pids {', '.join(str(p.pid) for p in children.values())});",
            end=" ",
        )
        print("Ctrl-C stops them, `make stop` stops the databases too", flush=True)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}: stopping the others", flush=True)
                    code = 1
                    stopping = True
                    break
            time.sleep(0.2)
    finally:
        stop_groups([child.pid for child in children.values()])
        for child in children.values():
            child.wait()
        STATE_FILE.unlink(missing_ok=True)
        print(
            "web, live, worker and beat stopped; PostgreSQL and Redis keep running (`make stop` stops them)", flush=True
        )
    return code


def stop() -> None:
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        supervisor = state.pop("supervisor", None)
        state.pop("port", None)
        if supervisor and _alive(supervisor):
            os.kill(supervisor, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS + 5
            while _alive(supervisor) and time.monotonic() < deadline:
                time.sleep(0.1)
        left = {name: pid for name, pid in state.items() if _group_alive(pid)}
        stop_groups(list(left.values()))
        for name, pid in state.items():
            print(f"{name}: stopped (pid {pid})" if name in left or supervisor else f"{name}: not running")
        STATE_FILE.unlink(missing_ok=True)
    else:
        print("web, live, worker, beat: not running")
    from codex import embedded_db, embedded_redis

    embedded_redis.stop()
    embedded_db.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codex.devstack")
    parser.add_argument("command", choices=["run", "stop", "preflight"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.host, args.port)
    if args.command == "preflight":
        preflight(args.host, args.port)
        return 0
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
