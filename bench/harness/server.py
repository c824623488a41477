"""Gunicorn under the benchmark: the project's ``gunicorn.conf.py``, 2 sync workers, loopback only."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import signal
import subprocess
import time

from .db import ROOT

LOG_DIR = ROOT / ".data" / "bench"
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop"
# Derived from the bench secret, so the seeding process and the servers share it (scratch data only).
BENCH_ENCRYPTION_KEY = base64.urlsafe_b64encode(hashlib.sha256(f"bench:{BENCH_SECRET_KEY}".encode()).digest()).decode()


def production_env(*, database_url: str, redis_url: str, extra: dict | None = None) -> dict[str, str]:
    """Environment of a production deployment, adjusted only for plain HTTP on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CODEX_", "GUNICORN_", "DATABASE_"))}
    env.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
            "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "codex.settings",
            "CODEX_BENCH_VIEWS": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    env.update(extra or {})
    return env


class Gunicorn:
    """``with Gunicorn(name, port, env, app) as server:`` starts it, waits until it answers, stops it."""

    def __init__(
        self,
        name: str,
        *,
        port: int,
        env: dict[str, str],
        app: str | None = None,
        probe_path: str = "/health",
        probe_host: str = "localhost",
        workers: int = 2,
        root=ROOT,
    ):
        self.name = name
        self.root = root  # the checkout served: its code, its .venv and its gunicorn.conf.py
        self.port = port
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_LOGLEVEL": "warning",
        }
        self.app = app
        self.probe_path = probe_path
        self.probe_host = probe_host
        self.process: subprocess.Popen | None = None
        self.log_path = LOG_DIR / f"{name}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.root / ".venv" / "bin" / "gunicorn"), "-c", str(self.root / "gunicorn.conf.py")]
        if self.app:
            cmd.append(self.app)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            cmd, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited; see {self.log_path}")
            try:
                status = get_status(self.port, self.probe_path, host=self.probe_host)
                if status == 200:
                    return
                last = f"status {status}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn {self.name} not ready after {timeout}s ({last}); see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False).stdout
        return [int(p) for p in out.split()]


def get_status(port: int, path: str, *, host: str, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def get(port: int, path: str, *, host: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()
