"""Redis unreachable (decision 0933): what needs it fails fast with a 503 envelope, what does not
keeps serving, nothing is lost, and it comes back by itself. The whole-stack drill with Redis
killed under load is bench/drill_redis_down.py (docs/reliability.md); these tests point the
caches and metering at a closed port."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import redis
from django.test import override_settings

from billing import metering
from tenants.cache import tenant_cache
from tests.conftest import FirmClient

pytestmark = pytest.mark.django_db

DEAD = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused at once


def _dead_caches(settings):
    options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    return {alias: {**config, "LOCATION": DEAD, "OPTIONS": options} for alias, config in settings.CACHES.items()}


@contextmanager
def _down(settings):
    dead_client = redis.Redis.from_url(DEAD, socket_connect_timeout=0.5, socket_timeout=0.5)
    tenant_cache.clear_local()
    try:
        with override_settings(CACHES=_dead_caches(settings)):
            metering.set_redis_client(dead_client)
            yield
    finally:
        metering.set_redis_client(None)
        metering.reset_local_state()
        tenant_cache.clear_local()


@pytest.fixture
def redis_down(settings):
    with _down(settings):
        yield


def test_a_key_revoked_while_redis_is_down_is_forgotten_by_redis_when_it_is_back(firm, api_key_for, settings):
    from tenants.models import ApiKey
    from tenants.services import api_key_revoke

    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    assert client.get("/api/v1/portfolios/", HTTP_HOST="api.localhost", HTTP_X_API_KEY=raw).status_code == 200
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    with _down(settings):
        api_key_revoke(key=key, actor="test")
        assert tenant_cache._undelivered  # kept for when Redis answers again
    # Redis is back with its data: the first lookup deletes the stale entries first.
    refused = client.get("/api/v1/portfolios/", HTTP_HOST="api.localhost", HTTP_X_API_KEY=raw)
    assert refused.status_code == 401 and not tenant_cache._undelivered


def test_the_api_keeps_serving_reads_and_writes_with_redis_down(firm, api_key_for, settings):
    raw = api_key_for(firm, "write")  # made while Redis is up
    with _down(settings):
        _api_calls(firm, raw)


def _api_calls(firm, raw):
    client = FirmClient(firm)
    listed = client.get("/api/v1/portfolios/", HTTP_HOST="api.localhost", HTTP_X_API_KEY=raw)
    assert listed.status_code == 200, listed.content
    created = client.post(
        "/api/v1/contacts/",
        {"first_name": "Outage", "last_name": "Proof"},
        content_type="application/json",
        HTTP_HOST="api.localhost",
        HTTP_X_API_KEY=raw,
    )
    assert created.status_code == 201, created.content


def test_api_calls_counted_while_redis_is_down_are_sent_when_it_is_back(firm, redis_down):
    metering.record_api_call(firm.pk, count=3)
    metering.record_api_call(firm.pk, count=2)
    assert sum(metering._unsent.values()) == 5  # kept in the process, not lost

    class Recorder:
        def __init__(self):
            self.sent: dict[str, int] = {}

        def pipeline(self, transaction=False):
            return self

        def incrby(self, key, n):
            self.sent[key] = self.sent.get(key, 0) + n

        def execute(self):
            return []

    back = Recorder()
    metering.set_redis_client(back)
    metering.record_api_call(firm.pk, count=1)
    assert sum(back.sent.values()) == 6 and not metering._unsent


def test_plan_flags_fail_open_when_redis_is_down(firm, redis_down):
    assert metering.api_blocked(firm.pk) is False
    assert metering.api_feature_missing(firm.pk) is False


def test_the_tenant_cache_reads_through_to_the_database(firm, redis_down):
    from tenants.cache import MISS

    tenant_cache.set("probe", {"x": 1}, 60)  # refused quietly: nothing kept anywhere
    assert tenant_cache.get("probe") is MISS
    response = FirmClient(firm).get("/health")
    assert response.status_code == 200


def test_a_view_that_needs_redis_answers_a_503_envelope_not_a_500(firm, redis_down):
    """Sign-in throttles fail closed: without Redis, no unthrottled password guessing."""
    response = FirmClient(firm).post(
        "/api/v1/auth/token/",
        {"email": "owner@acme.test", "password": "wrong-password"},
        content_type="application/json",
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


def test_ready_stays_up_and_reports_redis_unreachable(client, monkeypatch):
    """The node still serves what does not need Redis: the load balancer must keep it."""
    from codex import health

    monkeypatch.setattr(health, "_redis_client", redis.Redis.from_url(DEAD, socket_connect_timeout=0.5))
    response = client.get("/ready", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "unreachable"
