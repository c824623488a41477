from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.status import checks, selectors, services
from codex.status.models import ServiceCheck

pytestmark = pytest.mark.django_db


def _result(service, state="ok", detail=""):
    return checks.Result(service, checks.LABELS[service], state, 3, detail)


def test_every_service_is_checked_and_recorded(db):
    rows = services.status_record()
    assert {r.service for r in rows} == {
        "database",
        "migrations",
        "redis",
        "broker",
        "workers",
        "queues",
        "beat",
        "storage",
        "market_feeds",  # registered by portfolios.market (codex.status.checks.register)
    }
    by_service = {r.service: r for r in rows}
    assert by_service["database"].state == "ok"
    assert by_service["migrations"].state == "ok"
    assert "GiB free" in by_service["storage"].detail


def test_a_failing_check_is_down_with_its_error_not_an_exception(db, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def broken():
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(checks, "CHECKS", [("redis", "Redis", broken)])
    [result] = checks.run_all()
    assert result.state == "down" and "Connection refused" in result.detail


def test_disk_below_threshold_is_degraded(db, settings):
    settings.STATUS_DISK_MIN_FREE_PERCENT = 100.0
    state, detail = checks._storage()
    assert state == "degraded" and "free" in detail


def test_beat_and_workers_are_down_without_heartbeats_outside_eager_mode(db, monkeypatch):
    from django.core.cache import cache

    from codex.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.control, "ping", lambda timeout: [])
    cache.delete(checks.BEAT_LAST_RUN_KEY)
    cache.delete(checks.WORKER_HEARTBEAT_KEY)
    assert checks._beat()[0] == "down"
    assert checks._workers()[0] == "down"
    checks.mark_beat_ran()
    checks.mark_worker_alive()
    assert checks._beat()[0] == "ok"
    assert checks._workers()[0] == "ok"


def test_publishing_the_check_task_records_beats_run(db):
    from django.core.cache import cache

    from codex.status.signals import _record_beat_run

    cache.delete(checks.BEAT_LAST_RUN_KEY)
    _record_beat_run(sender="something.else")
    assert cache.get(checks.BEAT_LAST_RUN_KEY) is None
    _record_beat_run(sender=checks.CHECK_TASK)
    assert cache.get(checks.BEAT_LAST_RUN_KEY) is not None


def test_queue_depth_counts_waiting_messages_per_queue(private_redis):
    from codex.celery import app

    _client, url = private_redis
    with app.connection_for_write(url) as conn:
        for i in range(3):
            app.send_task("codex.nothing", args=[i], connection=conn, queue="hooks")
        app.send_task("codex.nothing", args=[9], connection=conn, queue="other")
        assert checks.queue_depths(conn, ["hooks", "other", "never-used"]) == {"hooks": 3, "other": 1, "never-used": 0}


def test_uptime_and_last_failure_from_the_history(db):
    now = timezone.now()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        ServiceCheck.objects.all().delete()
        for minute in range(10):
            state = "down" if minute == 3 else "ok"
            ServiceCheck.objects.create(
                checked_at=now - timedelta(minutes=minute), service="redis", state=state, detail=f"m{minute}"
            )
        ServiceCheck.objects.create(checked_at=now - timedelta(days=3), service="redis", state="down", detail="old")
    history = {h.service: h for h in selectors.status_history(now=now)}
    assert history["redis"].uptime["d1"] == 90.0
    assert history["redis"].uptime["d7"] == pytest.approx(100 * 9 / 11, abs=0.001)
    assert history["redis"].last_failure_detail == "m3"
    assert history["beat"].uptime["d1"] is None


def test_history_older_than_90_days_is_purged(db):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        ServiceCheck.objects.create(
            checked_at=timezone.now() - timedelta(days=91), service="redis", state="ok", detail=""
        )
        services.status_record(results=[_result("redis")])
        assert not ServiceCheck.objects.filter(checked_at__lt=timezone.now() - timedelta(days=90)).exists()


def test_public_status_shows_states_without_details(public_client, db):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        services.status_record(
            results=[_result("broker", "down", "Error 111 connecting to 10.0.0.7:5672"), _result("beat")]
        )
    # Redis and the database are /ready's live checks (they win over a recorded row); the broker
    # is shown from its latest recorded check.
    html = public_client.get("/status/").content.decode()
    assert "Partly degraded" in html
    assert "Job queue (broker)" in html and "down" in html
    assert "10.0.0.7" not in html and "Error 111" not in html


def test_operators_see_platform_status_with_details(db, monkeypatch):
    from tenants.accounts.models import User

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        services.status_record(results=[_result("redis", "down", "Error 111 connecting to 10.0.0.7:6379")])
        operator = User.objects.create_superuser("ops@codex.test", "pw-ops-123456789")
    monkeypatch.setattr(settings, "CODEX_OPERATOR_REQUIRE_2FA", False)
    client = Client(HTTP_HOST=settings.CODEX_BASE_DOMAIN)
    client.force_login(operator)
    response = client.get("/admin/platform_status/servicecheck/")
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    assert "Platform status" in html and "Error 111 connecting to 10.0.0.7:6379" in html
    assert "Uptime 24 h" in html and "Database" in html


def test_tenant_users_cannot_open_platform_status(owner_client):
    response = owner_client.get("/admin/platform_status/servicecheck/")
    assert response.status_code in (302, 403, 404)
