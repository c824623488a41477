"""``GET /api/v1/portfolios/`` in-process: ms per request and queries per request, 25 rows, API key.

Run by hand, never in CI (it is not under ``tests/``)::

    .venv/bin/python -m pytest bench/portfolio_list_client.py -p tests.conftest -s -q

Drives the whole stack (middlewares, authentication, throttles, DRF, the renderer) through Django's
test client inside one test transaction on the test database: 30 portfolios, each with a client, an
advisor, a benchmark and two users it is shared with, a page of 25. The default cache is process
memory (as the production Redis, throttling and metering cost no query). It prints the median and
best of several rounds; compare figures of the same machine and load only (docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import FirmClient
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory

ROUNDS = 7
REQUESTS = 200
URL = "/api/v1/portfolios/"


@pytest.fixture
def memory_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench-list"},
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def unthrottled(monkeypatch):
    """The rate limit far above what the loop sends (the throttle still counts every request)."""
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "principal", "100000000/min")


@pytest.mark.django_db
def test_portfolio_list_by_api_key(firm, advisor, advisor2, owner, api_key_for, memory_cache, unthrottled):
    benchmark = InstrumentFactory(symbol="BNCH")
    for i in range(30):
        p = PortfolioFactory(
            name=f"Portfolio {i:02d}", advisor=advisor, client=ContactFactory(owner=advisor), benchmark=benchmark
        )
        p.shared_with.add(advisor2, owner)
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    for _ in range(20):  # warm: host, key, throttle caches
        response = client.get(URL, HTTP_X_API_KEY=raw)
        assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 25
    with CaptureQueriesContext(connection) as ctx:
        client.get(URL, HTTP_X_API_KEY=raw)
    queries = [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]
    per_request = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            client.get(URL, HTTP_X_API_KEY=raw)
        per_request.append((time.perf_counter() - start) * 1000 / REQUESTS)
    median, best = statistics.median(per_request), min(per_request)
    print(
        f"\nGET {URL} (API key, 25 rows): median {median:.2f} ms/request ({1000 / median:.0f} req/s), "
        f"best {best:.2f} ms; {len(queries)} queries per request"
    )
    for sql in queries:
        print("  ", sql[:200])
