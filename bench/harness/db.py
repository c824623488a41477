"""The scratch database of the benchmarks: same PostgreSQL server as development, separate database."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent


def server_url() -> str:
    """URL of the development database (DATABASE_URL, or the embedded PostgreSQL started if needed)."""
    base = os.environ.get("DATABASE_URL")
    if base:
        return base
    from codex.embedded_db import ensure_running

    return ensure_running()


def database_url(name: str) -> str:
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate(name: str) -> str:
    """Drop and create database ``name``; return its URL."""
    import psycopg

    url = database_url(name)
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def clone(template: str, name: str) -> str:
    """Drop ``name`` and create it as a copy of ``template`` (no one may be connected to it)."""
    import psycopg

    url = database_url(name)
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return url


def exists(name: str) -> bool:
    import psycopg

    admin = urlunsplit(urlsplit(database_url(name))._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def redis_url(db: int = 11) -> str:
    """``redis://127.0.0.1:6379/<db>`` when the machine's Redis answers on loopback, else the
    embedded Redis (codex/embedded_redis.py, started if needed): production settings need one."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return f"redis://127.0.0.1:6379/{db}"
    except OSError:
        pass
    from codex.embedded_redis import ensure_running

    return ensure_running(db=db)


def redis_flush(url: str) -> None:
    """Empty the benchmark's own Redis database (never db 0) so no stale cache entry survives a re-seed."""
    db = int(urlsplit(url).path.strip("/") or 0)
    if db == 0:
        raise ValueError("refusing to flush Redis db 0")
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2) as sock:
        sock.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        sock.recv(64)
