"""API-call metering: counted without a database write per request, flushed idempotently into
UsageDaily (process buffer and Redis), meters visible, and the monthly API limit enforced with 402."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from billing import metering
from billing.models import Metric, UsageDaily

from .conftest import activate, utc

pytestmark = pytest.mark.django_db


def _today():
    return datetime.now(UTC).date()


def _flushed(tenant) -> int:
    row = UsageDaily.objects.filter(tenant=tenant, metric=Metric.API_CALLS, day=_today()).first()
    return row.count if row else 0


def test_api_requests_are_counted_in_memory_and_written_only_by_the_flush(owner_client, firm):
    for _ in range(3):
        assert owner_client.get("/api/v1/me/").status_code == 200
    owner_client.get("/billing/")  # pages are not API calls
    owner_client.get("/api/v1/billing/usage/")  # billing itself is exempt
    assert metering.pending_counts() == {(firm.pk, _today()): 3}
    assert _flushed(firm) == 0  # no write per request
    assert metering.usage_flush() == 3
    assert _flushed(firm) == 3 and metering.pending_counts() == {}
    assert metering.usage_flush() == 0  # running it again adds nothing
    owner_client.get("/api/v1/me/")
    metering.usage_flush()
    assert _flushed(firm) == 4  # added to the row, not overwritten


def test_middleware_makes_no_query(rf, firm):
    request = rf.get("/api/v1/me/")
    request.tenant = firm
    request.user = type("Principal", (), {"is_authenticated": True})()  # as DRF leaves it
    middleware = metering.ApiMeteringMiddleware(lambda r: __import__("django.http").http.HttpResponse("ok"))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            middleware(request)
    assert len(queries) == 0
    assert metering.pending_counts()[(firm.pk, _today())] == 50


def test_anonymous_requests_do_not_burn_the_firms_quota(anon_client, firm):
    assert anon_client.get("/api/v1/me/").status_code in (401, 403)
    assert anon_client.get("/api/v1/no-such-endpoint/").status_code in (401, 403, 404)
    assert metering.pending_counts() == {}


def test_concurrent_takers_never_count_an_increment_twice(firm):
    total = 20_000
    stop = threading.Event()
    taken = []

    def taker():
        while not stop.is_set():
            taken.append(sum(metering._take_counts().values()))

    threads = [threading.Thread(target=taker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(total):
        metering.record_api_call(firm.pk)
    stop.set()
    for t in threads:
        t.join()
    assert sum(taken) + sum(metering._take_counts().values()) == total


def test_counts_of_unknown_firms_are_dropped(firm):
    metering.record_api_call(999_999_999)
    metering.record_api_call(firm.pk)
    assert metering.usage_flush() == 2
    assert not UsageDaily.objects.filter(tenant_id=999_999_999).exists()


# --- Limit enforcement -----------------------------------------------------------------------------
def test_hard_api_limit_answers_402_until_upgraded(owner_client, firm):
    activate(firm, code="free", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))  # 1,000 calls, no overage
    metering.record_api_call(firm.pk, count=999)
    metering.usage_flush()
    assert owner_client.get("/api/v1/me/").status_code == 200  # the 1,000th call
    metering.usage_flush()
    response = owner_client.get("/api/v1/me/")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "plan_limit_exceeded" and "/billing/" in error["details"]["billing_url"]
    assert owner_client.get("/api/v1/billing/usage/").status_code == 200  # can still see and upgrade
    from tests.conftest import FirmClient

    assert FirmClient(firm).get("/api/v1/me/").status_code in (401, 403)  # anonymous: no plan details
    activate(firm, code="starter", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.usage_flush()
    assert owner_client.get("/api/v1/me/").status_code == 200


def test_plan_with_overage_is_never_blocked(owner_client, firm):
    activate(firm, code="pro", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.record_api_call(firm.pk, count=2_000_000)
    metering.usage_flush()
    assert owner_client.get("/api/v1/me/").status_code == 200


def test_other_firm_is_not_blocked_by_acme(owner_client, outsider_client, firm):
    activate(firm, code="free", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.record_api_call(firm.pk, count=5000)
    metering.usage_flush()
    assert owner_client.get("/api/v1/me/").status_code == 402
    assert outsider_client.get("/api/v1/me/").status_code == 200


# --- Meters ------------------------------------------------------------------------------------------
def test_meters_show_usage_against_limits_in_page_and_api(owner_client, firm):
    activate(firm, code="starter", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.record_api_call(firm.pk, count=7)
    meters = {m["key"]: m for m in owner_client.get("/api/v1/billing/usage/").json()["results"]}
    assert meters["api_calls"]["used"] == 7 and meters["api_calls"]["limit"] == 50000
    assert meters["seats"]["limit"] == 10 and meters["seats"]["used"] == 5  # owner, admin, 2 advisors, viewer
    page = owner_client.get("/billing/").content.decode()
    assert "API calls in" in page and "<meter" in page and "50000" in page


def test_usage_snapshot_records_daily_counts(firm, in_public):
    from billing.services import usage_snapshot

    usage_snapshot(day=utc(2026, 1, 5).date())
    usage_snapshot(day=utc(2026, 1, 5).date())  # idempotent
    seats = UsageDaily.objects.get(tenant=firm, metric=Metric.SEATS, day=utc(2026, 1, 5).date())
    assert seats.count == 5


# --- Redis -------------------------------------------------------------------------------------------
@pytest.fixture
def redis_client(private_redis):
    client, url = private_redis
    metering.set_redis_client(client)
    with override_settings(REDIS_URL=url):
        yield client
    metering.set_redis_client(None)


def test_redis_counters_are_flushed_with_getdel(redis_client, owner_client, firm):
    for _ in range(4):
        owner_client.get("/api/v1/me/")
    key = f"{metering.KEY_PREFIX}{firm.pk}:{_today():%Y%m%d}"
    assert int(redis_client.get(key)) == 4
    assert metering.usage_flush() == 4
    assert redis_client.get(key) is None and _flushed(firm) == 4


def test_concurrent_redis_takers_never_double_count(redis_client, firm):
    total = 3000
    stop = threading.Event()
    taken = []

    def taker():
        while not stop.is_set():
            taken.append(sum(metering._take_counts().values()))

    threads = [threading.Thread(target=taker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(total):
        metering.record_api_call(firm.pk)
    stop.set()
    for t in threads:
        t.join()
    assert sum(taken) + sum(metering._take_counts().values()) == total


def test_redis_block_flag_is_shared(redis_client, owner_client, firm):
    activate(firm, code="free", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.record_api_call(firm.pk, count=1000)
    metering.usage_flush()
    assert redis_client.get(f"{metering.BLOCK_PREFIX}{firm.pk}") is not None
    assert owner_client.get("/api/v1/me/").status_code == 402


def test_api_keys_need_the_api_feature_but_the_web_session_does_not(client, owner_client, api_key_for, firm):
    key = api_key_for(firm, "read")
    activate(firm, code="free", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))  # Free: no "api" feature
    metering.refresh_api_blocks()
    response = client.get("/api/v1/me/", HTTP_HOST="acme.localhost", HTTP_X_API_KEY=key)
    assert response.status_code == 402 and response.json()["error"]["code"] == "feature_not_in_plan"
    assert owner_client.get("/api/v1/me/").status_code == 200
    activate(firm, code="starter", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.refresh_api_blocks()
    assert client.get("/api/v1/me/", HTTP_HOST="acme.localhost", HTTP_X_API_KEY=key).status_code == 200


def test_plan_change_republishes_the_api_flags_on_commit(firm, django_capture_on_commit_callbacks):
    from billing import services

    activate(firm, code="starter", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.refresh_api_blocks()
    assert not metering.api_feature_missing(firm.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_cancel(tenant=firm, actor="o")
        services.invoice_run(now=utc(2099, 1, 2), subscription_ids=[firm.subscription.pk])
    assert metering.api_feature_missing(firm.pk)  # ended: Free limits, no API


def test_call_counted_by_the_throttle_is_not_counted_again(redis_client, rf, firm):
    """The API throttle's pipeline carries the count (decision 0704): the middleware adds nothing."""
    from django.http import HttpResponse

    principal = type("Principal", (), {"is_authenticated": True})()

    def view(request):
        request.user = principal  # as DRF leaves it
        key = metering.api_call_key_for_pipeline(request, redis_client)
        assert key is not None and metering.api_call_key_for_pipeline(request, redis_client) is not None
        redis_client.incr(key)  # what the throttle's pipeline does
        metering.api_call_counted(request, key)
        assert metering.api_call_key_for_pipeline(request, redis_client) is None  # never twice
        return HttpResponse("ok")

    request = rf.get("/api/v1/me/")
    request.tenant = firm
    metering.ApiMeteringMiddleware(view)(request)
    assert metering.pending_counts() == {(firm.pk, _today()): 1}


def test_call_counted_by_the_throttle_is_taken_back_if_the_caller_signed_out(redis_client, rf, firm):
    """A call that ends unauthenticated was never counted; the throttle's early count is undone."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    def view(request):
        key = metering.api_call_key_for_pipeline(request, redis_client)
        redis_client.incr(key)
        metering.api_call_counted(request, key)
        request.user = AnonymousUser()  # signed out while serving the request
        return HttpResponse("ok")

    request = rf.get("/api/v1/me/")
    request.tenant = firm
    metering.record_api_call(firm.pk, count=5)
    metering.ApiMeteringMiddleware(view)(request)
    assert metering.pending_counts() == {(firm.pk, _today()): 5}


def test_throttle_never_counts_requests_the_middleware_does_not_meter(redis_client, rf, firm):
    from django.http import HttpResponse

    seen = []

    def view(request):
        seen.append(metering.api_call_key_for_pipeline(request, redis_client))
        return HttpResponse("ok")

    for path in ("/api/v1/billing/usage/", "/api/v1/schema/"):  # exempt from metering
        request = rf.get(path)
        request.tenant = firm
        metering.ApiMeteringMiddleware(view)(request)
    assert seen == [None, None]
    assert metering.api_call_key_for_pipeline(rf.get("/api/v1/me/"), redis_client) is None  # no middleware
