"""A real server for the browser tests: ``manage.py runserver`` in a subprocess on the TEST database.

pytest-django's live_server runs in the test process and flushes tables between tests, which would
wipe the shared firms; this server is a separate process on a free port, pointed at the test
database (committed data only), with e-mails printed to its output (console backend) so tests can
read invitation links. Chromium resolves ``*.localhost`` to 127.0.0.1 by itself, so firm hosts
(``<slug>.localhost:<port>``) need no DNS.
"""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis
from django.conf import settings

from tests.conftest import redis_url_in_block

ROOT = Path(settings.BASE_DIR)
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; `make test` installs it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_database_name() -> str:
    """The test database of this run (``DATABASE_TEST_NAME``, else Django's ``test_<name>``).

    Read from the settings, not from the connection: outside a ``db`` test pytest-django leaves the
    connection pointing at the development database's name.
    """
    config = settings.DATABASES["default"]
    name = (config.get("TEST") or {}).get("NAME")
    if name:
        return name
    return config["NAME"] if config["NAME"].startswith("test_") else f"test_{config['NAME']}"


def clone_database(source: str, target: str) -> None:
    """``CREATE DATABASE target TEMPLATE source``: a private copy for the live server.

    The browser journeys commit firms, market data and more; in a copy they never leak into the
    test database the other tests share (and reuse between runs). PostgreSQL copies the files, so it
    takes about a second, but no session may be connected to ``source``: the caller closes its own.
    """
    import gc
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    gc.collect()  # connections leaked by finished threads of earlier tests close with their objects
    admin = urlunsplit(urlsplit(database_url(source))._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        try:
            conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
        except psycopg.errors.ObjectInUse:
            # A session an earlier test left open (a thread's connection) still holds the test
            # database: end it (this run owns that database) and copy again.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [source],
            )
            time.sleep(0.5)
            conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')


def drop_database(name: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    admin = urlunsplit(urlsplit(database_url(name))._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop_stale_compressed(root: Path) -> None:
    """Remove ``x.gz``/``x.br`` older than ``x``: whitenoise prefers them, and a production-style
    collectstatic run earlier would otherwise serve yesterday's stylesheet to the browser."""
    for compressed in [*root.rglob("*.gz"), *root.rglob("*.br")]:
        source = compressed.with_suffix("")
        if source.exists() and source.stat().st_mtime > compressed.stat().st_mtime:
            compressed.unlink()


_static_collected = False


def collect_static_once() -> None:
    """``collectstatic`` for the live servers, once per test process and in it.

    The servers read the same static settings as this process (only the database, Redis and ports
    differ), and the files do not change during a run: a ``manage.py collectstatic`` per server
    started a Python process and walked every file again for each browser module."""
    global _static_collected
    if _static_collected:
        return
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    _drop_stale_compressed(Path(settings.STATIC_ROOT))
    _static_collected = True


class LiveServer:
    def __init__(self, *, database: str, cors_origins: list[str]):
        self.port = free_port()
        self.live_port = free_port()
        # One log per test process: another run (another engineer, CI) may be running at the same time.
        self.log_path = ARTIFACTS / f"live-server-{os.getpid()}.log"
        ARTIFACTS.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            {
                "DATABASE_URL": database_url(database),
                "DJANGO_ENV": "development",
                "DJANGO_DEBUG": "false",
                "CODEX_PUBLIC_PORT": str(self.port),
                "CODEX_CORS_ALLOWED_ORIGINS": ",".join(cors_origins),
                "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
                # A Redis database of the live server's own: its tasks go to its own worker below.
                "REDIS_URL": redis_url_in_block(2),
                "CELERY_WORKER_REDIRECT_STDOUTS": "false",
                "DJANGO_LOG_LEVEL": "WARNING",
                # The journeys sign up and sign in more often than a person would.
                "CODEX_RATE_SIGNUP": "1000/h",
                "CODEX_RATE_LOGIN": "1000/min",
                "CODEX_RATE_INVITATION": "1000/h",
                "CODEX_RATE_INVITATION_ACCEPT": "1000/h",
                "PYTHONUNBUFFERED": "1",
                # The live stream (uvicorn, as `make run` starts it) on a port of its own; pages poll
                # every 2 s while they hold no stream (the fallback is tested too).
                "LIVE_STREAM_URL": f"http://localhost:{self.live_port}/live/stream",
                "LIVE_POLL_SECONDS": "2",
            }
        )
        # DEBUG is off (our error pages, no debug toolbar of Django's), so whitenoise serves the
        # collected files, as in production.
        self.env = env
        # The broker and cache of an earlier live server of this test process (another module)
        # may still hold its queued tasks, made for a database since dropped: start empty.
        with redis.Redis.from_url(env["REDIS_URL"]) as broker:
            broker.flushdb()
        collect_static_once()
        # The shared market data, loaded while the three servers below start (neither waits on the
        # other; the pages are first asked for after both).
        seeding = subprocess.Popen(
            [sys.executable, "manage.py", "seed_market"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", "--nostatic", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # A real Celery worker, as `make run` and production have: e-mails (sign-up, invitations)
        # are sent by tasks; the console backend prints them into the same log, read by emails().
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "codex", "worker", "--pool", "solo", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.stream = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "codex.live.server:app", "--host", "127.0.0.1",
             "--port", str(self.live_port), "--no-access-log", "--timeout-graceful-shutdown", "1"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = seeding.communicate(timeout=120)
            if seeding.returncode != 0:
                raise RuntimeError(f"manage.py seed_market failed: {output[-3000:]}")
            self._wait_ready()
            self._wait_url(f"http://127.0.0.1:{self.live_port}/live/health", self.stream)
        except BaseException:
            if seeding.poll() is None:
                seeding.kill()
                seeding.wait()
            self.stop()
            raise

    def manage(self, *args: str) -> str:
        """Run a management command against the server's database; returns its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
        return result.stdout

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"live server exited: {self.output()[-3000:]}")
            try:
                probe = urllib.request.Request(f"http://127.0.0.1:{self.port}/health", headers={"Host": "localhost"})
                with urllib.request.urlopen(probe, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"live server did not start: {self.output()[-3000:]}")

    def _wait_url(self, url: str, process: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited: {self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer: {self.output()[-3000:]}")

    def url(self, host: str = "localhost", path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def firm_url(self, slug: str, path: str = "/") -> str:
        return self.url(f"{slug}.localhost", path)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, *, after: int = 0, timeout: float = 15) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.output(), after)
            if match:
                return match
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not in the server output: {self.output()[after:][-3000:]}")

    def emails(self, *, after: int = 0) -> list[tuple[str, str, str]]:
        """(to, subject, decoded body) of each e-mail printed by the console backend after ``after``."""
        found = []
        for block in re.split(r"^-{79}$", self.output()[after:], flags=re.M):
            start = block.find("Content-Type:")
            if start < 0 or "\nSubject:" not in block:
                continue
            message = email.message_from_string(block[start:].strip() + "\n")
            if message.is_multipart():
                part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
            else:
                part = message
            body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8", "replace")
            found.append((message["To"], message["Subject"], body))
        return found

    def wait_for_email(self, *, to: str, pattern: str, after: int = 0, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for recipient, _subject, body in self.emails(after=after):
                if to in (recipient or "") and (match := re.search(pattern, body)):
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no e-mail to {to} matching {pattern!r}: {self.emails(after=after)}")

    def stop(self) -> None:
        # All three are asked to stop at once, then waited for: they shut down side by side. The
        # Celery worker's warm shutdown waits for the task it is running (measured: killed at the
        # 10 s bound in the console module); its database is dropped next, so it gets 3 s.
        worker = getattr(self, "worker", None)
        processes = [p for p in (self.process, worker, getattr(self, "stream", None)) if p]
        for process in processes:
            process.terminate()
        start = time.monotonic()
        for process in processes:
            bound = 3 if process is worker else 10
            try:
                process.wait(timeout=max(0.1, start + bound - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()
