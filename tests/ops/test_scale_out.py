"""Two gunicorn nodes on one database (and one Redis when there is one) share rate limits,
sessions and caches: what N stateless web nodes behind a load balancer rely on.

The nodes are real gunicorn processes (gunicorn.conf.py, one sync worker each) started against
the test database, so everything they read must be committed: the API key is created outside the
test transactions and removed at the end.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from codex.embedded_redis import server_binary
from tenants.models import ApiKey, Tenant

from .helpers import database_url_for_subprocesses

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-9"  # tests/conftest.py
BASE_RATE = 3  # per minute, times the plan's multiplier


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {seconds} s")


class Node:
    def __init__(self, port: int):
        self.port = port

    def request(self, method, path, host, headers=None, body=None, cookies=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": host, **(headers or {})}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        set_cookies = {}
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                set_cookies[key] = rest.split(";", 1)[0]
        conn.close()
        return response.status, dict(response.getheaders()), data, set_cookies


@pytest.fixture(scope="module")
def nodes(django_db_setup, django_db_blocker, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nodes")
    procs: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocesses(),
        "GUNICORN_WORKERS": "1",
        "CODEX_API_RATE": f"{BASE_RATE}/min",
        "DJANGO_DEBUG": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_TEST_NAME", None)
    # A Redis of the two nodes' own (the embedded server's binary), as production shares one.
    redis_port = _free_port()
    redis = subprocess.Popen(
        [server_binary(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(redis)
    _wait_port(redis_port, redis)
    env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    backend = "redis"
    with django_db_blocker.unblock():
        from tenants.services import api_key_create

        acme = Tenant.objects.get(slug="acme")
        key, raw = api_key_create(tenant=acme, name="scale-out test", scope="read", created_by="test")
    ports = [_free_port(), _free_port()]
    try:
        for port in ports:
            log = (workdir / f"gunicorn-{port}.log").open("w")
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
                cwd=ROOT,
                env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(proc)
        for port, proc in zip(ports, procs[-2:], strict=True):
            _wait_port(port, proc)
        yield [Node(p) for p in ports], raw, backend, env
    finally:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (PermissionError, ProcessLookupError):
                    proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with django_db_blocker.unblock(), schema_context(settings.PUBLIC_SCHEMA_NAME):
            ApiKey.objects.filter(pk=key.pk).delete()


def test_rate_limits_are_shared_by_the_nodes(nodes, db):
    (a, b), raw, _backend, _env = nodes
    from codex.api.throttles import plan_multiplier

    allowed = max(1, int(BASE_RATE * plan_multiplier(Tenant.objects.get(slug="acme"))))
    statuses = []
    for i in range(allowed + 2):
        node = (a, b)[i % 2]
        status, headers, _, _ = node.request("GET", "/api/v1/tenant/", "api.localhost", {"X-API-Key": raw})
        statuses.append(status)
    # One budget across both nodes: with per-node counters each would allow `allowed` requests.
    assert statuses == [200] * allowed + [429, 429], statuses
    assert "Retry-After" in headers


def _login(node, host: str) -> dict:
    status, _, body, cookies = node.request("GET", "/accounts/login/", host)
    assert status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    form = f"csrfmiddlewaretoken={token}&username=owner%40acme.test&password={PASSWORD}"
    status, headers, _, new = node.request(
        "POST", "/accounts/login/", host, {"Referer": f"http://{host}/accounts/login/"}, form, cookies
    )
    assert status == 302, status
    return {**cookies, **new}


def test_a_session_made_on_one_node_works_on_the_other_and_ends_everywhere(nodes, db):
    (a, b), _raw, _backend, _env = nodes
    host = "acme.localhost"
    cookies = _login(a, host)
    assert b.request("GET", "/accounts/team/", host, cookies=cookies)[0] == 200
    # Sign out on node B: node A no longer knows the session.
    status, _, body, _ = b.request("GET", "/accounts/team/", host, cookies=cookies)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    status, _, _, _ = b.request(
        "POST", "/accounts/logout/", host, {"Referer": f"http://{host}/"}, f"csrfmiddlewaretoken={token}", cookies
    )
    assert status in (200, 302)
    status, headers, _, _ = a.request("GET", "/accounts/team/", host, cookies=cookies)
    assert status == 302 and "/accounts/login/" in headers["Location"]


def test_firm_lookups_are_invalidated_on_every_node(nodes, db):
    """Suspending a firm in one process (a third one, as an operator's command would) is seen by
    every other process within 2 s: the host cache is shared and invalidated through Redis, each
    process checking for invalidations every CODEX_TENANT_CACHE_CHECK_SECONDS (1 s)."""
    (a, b), _raw, backend, env = nodes
    assert backend == "redis"
    host = "globex.localhost"
    page = "/accounts/team/"  # anonymous: a redirect to sign in; suspended firm: 403 for everyone
    assert a.request("GET", page, host)[0] == 302
    assert b.request("GET", page, host)[0] == 302  # both nodes have globex cached now

    def shell(code: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]

    previous = Tenant.objects.get(slug="globex").status
    shell(
        "from tenants.models import Tenant; from tenants.services import tenant_suspend; "
        "tenant_suspend(tenant=Tenant.objects.get(slug='globex'), actor='scale-out test', reason='test')"
    )
    suspended_at = time.monotonic()
    try:
        seen_after = {}
        for name, node in (("a", a), ("b", b)):
            while node.request("GET", page, host)[0] != 403 and time.monotonic() - suspended_at < 5:
                time.sleep(0.05)
            seen_after[name] = time.monotonic() - suspended_at
            assert node.request("GET", page, host)[0] == 403
        assert max(seen_after.values()) <= 2.0, seen_after
    finally:
        # Back to how the shared test firm was (a transition the lifecycle would not offer).
        shell(
            "from tenants.models import Tenant; from tenants.selectors import tenant_cache_invalidate; "
            f"Tenant.objects.filter(slug='globex').update(status='{previous}'); "
            "tenant_cache_invalidate(hosts=['globex.localhost'])"
        )
