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
    request.auth = None
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


# --- One place: the middleware counts each billable call once, after its answer ------------------
def test_each_authenticated_api_call_is_counted_once_whatever_its_answer(owner_client, firm):
    assert owner_client.get("/api/v1/me/").status_code == 200
    assert owner_client.get("/api/v1/portfolios/987654321/").status_code == 404
    assert owner_client.post("/api/v1/portfolios/", {}, content_type="application/json").status_code == 400
    assert metering.pending_counts() == {(firm.pk, _today()): 3}


def test_a_throttled_call_is_counted_once(owner_client, firm, settings):
    from rest_framework.settings import api_settings

    from codex.api.throttles import PrincipalRateThrottle

    settings.CODEX_PLAN_RATE_MULTIPLIERS = {}
    old = PrincipalRateThrottle.THROTTLE_RATES
    PrincipalRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "principal": "2/min"}
    try:
        codes = [owner_client.get("/api/v1/me/").status_code for _ in range(3)]
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = old
    assert codes == [200, 200, 429]
    assert metering.pending_counts() == {(firm.pk, _today()): 3}


def test_a_call_that_ends_unauthenticated_is_never_counted(rf, firm):
    """Counted after the answer, on the caller DRF authenticated: nothing to take back later."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    def view(request):
        request.user, request.auth = AnonymousUser(), None  # as DRF leaves it after signing out
        return HttpResponse("ok")

    request = rf.get("/api/v1/me/")
    request.tenant = firm
    metering.ApiMeteringMiddleware(view)(request)
    assert metering.pending_counts() == {}


def test_a_request_no_api_view_authenticated_is_not_counted(rf, firm):
    """A session user the API never looked at (no API view answered) is not a billable call."""
    from django.http import HttpResponseNotFound

    request = rf.get("/api/v1/no-such-endpoint/")
    request.tenant = firm
    request.user = type("Principal", (), {"is_authenticated": True})()  # a session user, not DRF's
    metering.ApiMeteringMiddleware(lambda r: HttpResponseNotFound())(request)
    assert metering.pending_counts() == {}


def test_exempt_paths_are_never_counted(rf, firm):
    from django.http import HttpResponse

    for path in ("/api/v1/billing/usage/", "/api/v1/schema/"):
        request = rf.get(path)
        request.tenant = firm
        request.user, request.auth = type("Principal", (), {"is_authenticated": True})(), None
        metering.ApiMeteringMiddleware(lambda r: HttpResponse("ok"))(request)
    assert metering.pending_counts() == {}


def test_metering_code_never_decrements_a_count():
    """No take-back: the only write of a count is ``INCRBY`` with a positive number of calls."""
    import inspect

    source = inspect.getsource(metering)
    assert "incrby(" in source and "-1)" not in source and "decr(" not in source


def test_the_throttle_knows_nothing_of_billing():
    """The kernel's throttle imports no billing module; billing gives it the plan code at start-up."""
    import ast
    import inspect

    from codex.api import throttles

    tree = ast.parse(inspect.getsource(throttles))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(name and name.split(".")[0] == "billing" for name in imported), imported
    from billing.entitlements import plan_code_of

    assert throttles._plan_code_source is plan_code_of
