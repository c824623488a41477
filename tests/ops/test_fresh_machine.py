"""Bad input on a fresh (or not so fresh) machine gets one line saying what to do, and nothing is
deleted: a data directory of another PostgreSQL major version or half initialised, a port already
taken; and production refuses to start without REDIS_URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_data_directory_of_another_postgresql_major_is_refused_and_kept(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")  # what pgserver (PostgreSQL 16) left in .data/pg
    (pgdata / "base").mkdir()
    done = _run(["-m", "codex.embedded_db"], CODEX_EMBEDDED_PGDATA=str(pgdata))
    assert done.returncode != 0
    line = _one_line(done.stderr)
    assert "PostgreSQL 16" in line and "PostgreSQL 18" in line and f"mv {pgdata}" in line
    assert (pgdata / "PG_VERSION").read_text() == "16\n" and (pgdata / "base").is_dir()


def test_a_half_initialised_data_directory_is_refused_and_kept(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "global").mkdir()  # initdb interrupted before it wrote PG_VERSION
    done = _run(["-m", "codex.embedded_db"], CODEX_EMBEDDED_PGDATA=str(pgdata))
    assert done.returncode != 0
    assert "not an initialised data directory" in _one_line(done.stderr)
    assert (pgdata / "global").is_dir()


def test_a_taken_web_port_is_refused_before_any_work():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(["-m", "codex.devstack", "preflight", "--port", str(port)])
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert f"port {port}" in line and "make stop" in line and "PORT=" in line


def test_a_taken_live_stream_port_is_refused_too():
    """`make run` serves the live stream on PORT+1 (codex.live.server): that port is checked first too."""
    from codex.devstack import port_free

    # a free web port whose next port (the live stream's) this test can hold
    for _attempt in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            web_port = probe.getsockname()[1]
        if web_port < 65535:
            taken = socket.socket()
            try:
                taken.bind(("127.0.0.1", web_port + 1))
            except OSError:
                taken.close()
                continue
            if port_free("127.0.0.1", web_port):
                break
            taken.close()
    else:
        raise AssertionError("no free pair of neighbouring ports on this machine")
    with taken:
        taken.listen()
        done = _run(["-m", "codex.devstack", "preflight", "--port", str(web_port)])
    assert done.returncode == 1
    assert f"port {web_port + 1}" in _one_line(done.stderr)


def test_a_taken_redis_port_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(["-m", "codex.embedded_redis"], CODEX_REDIS_PORT=str(port), CODEX_EMBEDDED_REDIS_DIR=str(tmp_path))
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert f"port {port} is taken" in line and "CODEX_REDIS_PORT" in line
    assert not (tmp_path / "redis.pid").exists()  # nothing was started


def test_production_refuses_to_start_without_redis_url():
    env = {
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 64,
        "CODEX_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "REDIS_URL": "",
    }
    done = _run(["-c", "import codex.settings"], **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured: REDIS_URL must be set in production" in done.stderr
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    assert _run(["-c", "import codex.settings"], **env).returncode == 0  # the positive control
    env["CODEX_TENANT_CACHE_CHECK_SECONDS"] = "30"
    done = _run(["-c", "import codex.settings"], **env)
    assert done.returncode != 0 and "CODEX_TENANT_CACHE_CHECK_SECONDS must be" in done.stderr
