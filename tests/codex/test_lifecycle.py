"""codex.lifecycle: Django's start- and end-of-request housekeeping in the web workers, the same
steps with fewer lookups (decision 0704, sixth pass)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque

import pytest
from django.conf import settings
from django.core.cache import close_caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections, reset_queries
from django.test import override_settings

from codex import lifecycle
from tests.ops.helpers import database_url_for_subprocesses

CLOSED: list[str] = []


class ClosingCache(LocMemCache):
    """A backend with a ``close()`` of its own, like memcached's."""

    def close(self, **kwargs):
        CLOSED.append("closed")


LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "lifecycle-test"}
CLOSING = {"BACKEND": f"{__name__}.ClosingCache", "LOCATION": "lifecycle-closing"}


def _receivers(signal) -> list:
    return [ref() for _key, ref, *_ in signal.receivers]


@pytest.fixture
def installed():
    lifecycle.install()
    yield
    lifecycle.uninstall()


def test_install_puts_the_lean_receivers_in_the_place_of_djangos(installed):
    started, finished = _receivers(request_started), _receivers(request_finished)
    assert lifecycle.on_request_started in started
    assert reset_queries not in started and close_old_connections not in started
    assert lifecycle.on_request_finished in finished
    assert close_old_connections not in finished and close_caches not in finished


def test_uninstall_gives_django_its_receivers_back():
    lifecycle.install()
    lifecycle.uninstall()
    assert {reset_queries, close_old_connections} <= set(_receivers(request_started))
    assert {close_old_connections, close_caches} <= set(_receivers(request_finished))
    assert lifecycle.on_request_started not in _receivers(request_started)


@pytest.mark.parametrize(
    ("backends", "needed"),
    [
        (["django.core.cache.backends.redis.RedisCache"], False),
        (["django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.db.DatabaseCache"], False),
        (["django.core.cache.backends.filebased.FileBasedCache", "django.core.cache.backends.dummy.DummyCache"], False),
        (["django.core.cache.backends.memcached.PyMemcacheCache"], True),
        (["django.core.cache.backends.redis.RedisCache", f"{__name__}.ClosingCache"], True),
    ],
)
def test_closing_is_needed_only_for_a_backend_with_its_own_close(backends, needed):
    setting = {f"c{i}": {"BACKEND": backend} for i, backend in enumerate(backends)}
    assert lifecycle.cache_closing_needed(setting) is needed


def test_the_project_caches_need_no_closing(installed):
    assert not lifecycle.cache_closing_needed(settings.CACHES)
    assert close_caches not in _receivers(request_finished)


def test_a_closing_backend_keeps_djangos_cache_receiver(installed):
    CLOSED.clear()
    with override_settings(CACHES={"default": LOCMEM, "other": CLOSING}):
        assert close_caches in _receivers(request_finished)
        from django.core.cache import caches

        caches["other"].set("k", 1)  # opened in this request cycle
        close_caches()  # what the connected receiver runs at the end of the request
        assert CLOSED == ["closed"]
    assert close_caches not in _receivers(request_finished)  # back to the project's caches


class FakeConnection:
    def __init__(self):
        self.queries_log = deque([{"sql": "SELECT 1"}])
        self.calls = []

    def close_if_unusable_or_obsolete(self):
        self.calls.append("close_if_unusable_or_obsolete")


def test_each_opened_connection_is_reset_and_checked_and_others_are_not_opened(monkeypatch):
    opened, never_opened = FakeConnection(), "never"
    monkeypatch.setattr(lifecycle, "_db_aliases", ("opened", never_opened))
    connections._connections.opened = opened
    try:
        lifecycle.on_request_started()
        assert list(opened.queries_log) == [] and opened.calls == ["close_if_unusable_or_obsolete"]
        lifecycle.on_request_finished()
        assert opened.calls == ["close_if_unusable_or_obsolete"] * 2
        assert not hasattr(connections._connections, never_opened)  # looked up, never created
    finally:
        delattr(connections._connections, "opened")


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_opened_connections_are_the_ones_django_would_walk(installed):
    connections["default"].ensure_connection()
    assert lifecycle.opened_connections() == connections.all(initialized_only=True)
    with override_settings(DATABASES={**settings.DATABASES, "extra": settings.DATABASES["default"]}):
        assert lifecycle._db_aliases == ("default", "extra")
    assert lifecycle._db_aliases == tuple(settings.DATABASES)


SCRIPT = r"""
import io, json, sys, time
from codex.wsgi import application
from django.db import connection

def get(path):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
               "HTTP_HOST": "localhost", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
               "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    status = []
    body = application(environ, lambda s, h, e=None: status.append(s))
    b"".join(body); body.close()
    return status[0]

def backend():
    return connection.connection.info.backend_pid if connection.connection is not None else None

get("/ready"); first = backend()
get("/ready"); kept = backend()
connection.close_at = time.monotonic() - 1   # past CONN_MAX_AGE: closed at the next request's start
get("/ready"); renewed = backend()
print(json.dumps({"first": first, "kept": kept, "renewed": renewed}))
"""


@pytest.mark.django_db
def test_a_web_worker_keeps_its_connection_and_renews_it_past_its_age():
    """Through ``codex.wsgi`` (the lean receivers installed), as a gunicorn worker serves."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocesses(),
        "DJANGO_SETTINGS_MODULE": "codex.settings",
        "DJANGO_CONN_MAX_AGE": "60",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pids = json.loads(result.stdout.strip().splitlines()[-1])
    assert pids["first"] is not None and pids["kept"] == pids["first"]
    assert pids["renewed"] is not None and pids["renewed"] != pids["first"]
