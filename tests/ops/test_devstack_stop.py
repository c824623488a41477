"""Ctrl-C on ``make run`` stops web, the live stream, worker and beat and leaves only the databases; ``make stop``
then stops the databases (issue #20, point 6; docs/decisions/0800).

The stack runs as ``make run`` runs it (``python -m codex.devstack run``), in a session of its own,
on its own web port, Redis port, PostgreSQL data directory and pid record, so it never touches the
test session's databases or a developer's running stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codex.devstack import port_free

ROOT = Path(__file__).resolve().parents[2]
# Start-up is slow on a loaded 2-core machine (initdb, runserver's checks, Celery's imports); the
# loops below return as soon as the condition holds.
START_TIMEOUT = 240
STOP_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _group_members(pgid: int) -> list[int]:
    """Live pids of process group ``pgid`` (runserver's reloader child, Celery's pool workers)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out = log.read_text() if log else ""
            pytest.fail(f"the stack exited ({proc.returncode}) while waiting for {what}:\n{out}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def test_ctrl_c_stops_web_worker_and_beat_and_make_stop_stops_the_databases(tmp_path):
    web_port, redis_port = _free_port(), _free_port()
    run_dir = tmp_path / "run"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env |= {
        "CODEX_RUN_DIR": str(run_dir),
        "CODEX_EMBEDDED_PGDATA": str(tmp_path / "pg"),
        "CODEX_EMBEDDED_REDIS_DIR": str(tmp_path / "redis"),
        "CODEX_REDIS_PORT": str(redis_port),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "stack.log"  # a file, not a pipe: a child left running cannot hang the test
    state_file = run_dir / "devstack.json"
    children: dict[str, int] = {}
    with log.open("w") as out:
        stack = subprocess.Popen(  # noqa: S603 (our own module)
            [sys.executable, "-m", "codex.devstack", "run", "--port", str(web_port)],
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(state_file.exists, START_TIMEOUT, "the pid record", stack, log)
        state = json.loads(state_file.read_text())
        children = {name: state[name] for name in ("web", "live", "worker", "beat")}
        _wait(lambda: not port_free("127.0.0.1", web_port), START_TIMEOUT, "the web port", stack, log)
        pg_pid = int((tmp_path / "pg" / "postmaster.pid").read_text().splitlines()[0])
        redis_pid = int((tmp_path / "redis" / "redis.pid").read_text().strip())
        assert all(_alive(pid) for pid in children.values())

        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        stack.wait(timeout=STOP_TIMEOUT)
        output = log.read_text()

        assert stack.returncode == 0, output
        assert "web, live, worker and beat stopped" in output
        for name, pid in children.items():
            assert not _group_members(pid), f"{name} (process group {pid}) left {_group_members(pid)}"
        assert port_free("127.0.0.1", web_port), "something still listens on the web port"
        assert port_free("127.0.0.1", web_port + 1), "something still listens on the live stream's port"
        assert not state_file.exists()
        # Only the databases keep running, for the next command.
        assert _alive(pg_pid) and _alive(redis_pid)
        assert not port_free("127.0.0.1", redis_port)

        stopped = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "codex.devstack", "stop"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT,
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "web, live, worker, beat: not running" in stopped.stdout
        assert f"Redis: stopped (pid {redis_pid}" in stopped.stdout
        assert f"PostgreSQL: stopped (pid {pg_pid}" in stopped.stdout
        _wait(lambda: not _alive(pg_pid) and not _alive(redis_pid), STOP_TIMEOUT, "the databases to exit")
        assert port_free("127.0.0.1", redis_port)
    finally:
        # Whatever failed above, leave nothing of this stack running.
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        for pid in children.values():
            if _group_members(pid):
                os.killpg(pid, signal.SIGKILL)
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "codex.devstack", "stop"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=STOP_TIMEOUT,
        )
