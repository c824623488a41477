from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from codex.outbox.models import OutboxEvent
from crm import services as crm_services
from tests.conftest import FirmClient
from webhooks import services
from webhooks.backoff import gives_up, retry_delay
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
API = "/api/v1/webhook-endpoints/"


def _endpoint(firm, url, types=("contact.created",)):
    return services.endpoint_create(tenant=firm, url=url, event_types=list(types), actor="test")


def _make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- outbox and delivery ------------------------------------------------------------------------------
def test_committed_change_is_delivered_signed_with_standard_webhooks(
    firm, owner, receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(firm, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        contact = crm_services.contact_create(actor=owner, tenant=firm, first_name="Ada", email="ada@example.com")
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert payload["type"] == "contact.created"
    assert payload["data"]["id"] == contact.pk and payload["data"]["email"] == "ada@example.com"
    event = OutboxEvent.objects.get(type="contact.created", data__id=contact.pk)
    assert got.headers["webhook-id"] == event.message_id
    delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.attempt_log.get().status_code == 200
    with pytest.raises(WebhookVerificationError):
        Webhook(services.secret_new()).verify(got.body, got.headers)


def test_rolled_back_change_records_and_sends_nothing(firm, owner, receiver, django_capture_on_commit_callbacks):
    _endpoint(firm, receiver.url)
    before = OutboxEvent.objects.count()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        crm_services.contact_create(actor=owner, tenant=firm, first_name="Gone", email="gone@example.com")
        raise RuntimeError("the change fails after the event was emitted")
    assert callbacks == []
    assert OutboxEvent.objects.count() == before
    assert receiver.requests == []


def test_endpoint_gets_only_the_event_types_it_subscribed_to(firm, owner, receiver, django_capture_on_commit_callbacks):
    _endpoint(firm, receiver.url, types=["deal.stage_changed"])
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_create(actor=owner, tenant=firm, first_name="Not", email="not@example.com")
    assert receiver.requests == []


def test_relay_of_one_event_twice_creates_one_delivery(firm, owner, receiver):
    from codex.outbox.services import event_emit, outbox_relay_event

    endpoint = _endpoint(firm, receiver.url)
    event = event_emit(type="contact.created", data={"id": 1}, resource="contact:1")
    assert outbox_relay_event(event_id=event.pk) is True
    assert outbox_relay_event(event_id=event.pk) is False
    assert WebhookDelivery.objects.filter(event=event, endpoint=endpoint).count() == 1


def test_failure_is_retried_with_backoff_never_sooner(firm, receiver, settings):
    receiver.answer = (500, b"boom", 0.0, {})
    endpoint = _endpoint(firm, receiver.url)
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    started = timezone.now()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    wait = (delivery.next_attempt_at - started).total_seconds()
    assert 0.8 * settings.WEBHOOKS_RETRY_BASE_SECONDS <= wait <= 1.2 * settings.WEBHOOKS_RETRY_BASE_SECONDS + 1
    # Asked again at once (a duplicate task, the sweep): nothing is sent before the backoff.
    assert services.delivery_attempt(delivery_id=delivery.pk) == "skipped"
    assert len(receiver.requests) == 1
    _make_due(delivery)
    receiver.answer = (204, b"", 0.0, {})
    assert services.delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    assert [a.status_code for a in WebhookAttempt.objects.filter(delivery=delivery)] == [500, 204]
    # every attempt carries the same webhook-id
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_delivery_gives_up_after_the_retry_window(firm, receiver, settings):
    receiver.answer = (503, b"", 0.0, {})
    settings.WEBHOOKS_RETRY_WINDOW_SECONDS = 3
    endpoint = _endpoint(firm, receiver.url)
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None


def test_redirect_is_not_followed(firm, receiver):
    receiver.answer = (302, b"", 0.0, {"Location": "http://169.254.169.254/latest/meta-data/"})
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302 and "redirects are not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_10_mb_answer_is_cut_at_the_cap_and_does_not_block(firm, receiver, settings):
    receiver.answer = (200, b"x" * (10 * 1024 * 1024), 0.0, {})
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    started = time.monotonic()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    assert time.monotonic() - started < 5
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert 0 < len(attempt.response_body) <= services.LOG_BODY_CHARS


def test_a_slow_receiver_times_out_and_is_retried_later(firm, receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    receiver.answer = (200, b"late", 3.0, {})
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    started = time.monotonic()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    assert time.monotonic() - started < 2.5
    delivery.refresh_from_db()
    assert "Timeout" in delivery.last_error and delivery.last_status_code is None


def test_endpoint_disabled_after_repeated_failures_and_owners_mailed(firm, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOKS_DISABLE_AFTER_SECONDS = 0
    receiver.answer = (500, b"", 0.0, {})
    endpoint = _endpoint(firm, receiver.url)
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    for _ in range(3):
        services.delivery_attempt(delivery_id=delivery.pk)
        _make_due(delivery)
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "3 failed attempts" in endpoint.disabled_reason
    # the next attempt of a disabled endpoint sends nothing
    assert services.delivery_attempt(delivery_id=delivery.pk) == "failed"
    assert len(receiver.requests) == 3


def test_disabling_mails_the_owners(firm, receiver, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    settings.WEBHOOKS_DISABLE_AFTER_SECONDS = 0
    receiver.answer = (500, b"", 0.0, {})
    endpoint = _endpoint(firm, receiver.url)
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_attempt(delivery_id=delivery.pk)
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    assert endpoint.url in mail.outbox[0].body


def test_re_enabling_clears_the_failures(firm, receiver):
    endpoint = _endpoint(firm, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, consecutive_failures=9, failing_since=timezone.now(), disabled_reason="x"
    )
    endpoint = services.endpoint_update(tenant=firm, endpoint=endpoint, enabled=True)
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None and endpoint.disabled_reason == ""


def test_rotation_signs_with_both_secrets_for_the_grace_period(firm, receiver):
    endpoint = _endpoint(firm, receiver.url)
    old = endpoint.secret
    endpoint = services.endpoint_rotate_secret(endpoint=endpoint, grace=timedelta(hours=1))
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(endpoint.secret).verify(got.body, got.headers)
    # after the grace period only the new secret signs
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now() - timedelta(1))
    services.delivery_replay(delivery=delivery)
    services.delivery_attempt(delivery_id=delivery.pk)
    got = receiver.requests[-1]
    Webhook(endpoint.secret).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


def test_replay_sends_the_same_webhook_id_again(firm, receiver):
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    services.delivery_attempt(delivery_id=delivery.pk)
    services.delivery_replay(delivery=delivery)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.event.message_id] * 2
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2


# --- SSRF -----------------------------------------------------------------------------------------------
BAD_URLS = [
    "https://127.0.0.1/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://172.16.5.4/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/hook",
    "https://[::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://0.0.0.0/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/computeMetadata/v1/",
    "http://93.184.215.14/hook",  # not https
]


@pytest.fixture
def production_rules(settings):
    settings.WEBHOOKS_REQUIRE_HTTPS = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False


@pytest.mark.parametrize("url", BAD_URLS)
def test_production_refuses_internal_or_plain_http_urls_at_save(firm, owner, client_for, production_rules, url):
    response = client_for(owner).post(
        API, {"url": url, "event_types": ["contact.created"]}, content_type="application/json"
    )
    assert response.status_code == 400, url
    assert "url" in response.json()["error"]["details"]
    assert not WebhookEndpoint.objects.filter(url=url).exists()


def test_production_accepts_a_public_https_address(firm, production_rules):
    endpoint = _endpoint(firm, "https://93.184.215.14/hook")
    assert endpoint.pk


def test_send_time_check_refuses_an_address_that_became_internal(firm, receiver, production_rules, settings):
    # Saved while private addresses were allowed (or DNS pointed elsewhere); refused when sending.
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOKS_REQUIRE_HTTPS = False
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("Refused:")
    assert receiver.requests == []


# --- backoff (pure) -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 5), (2, 20), (3, 80), (4, 320), (5, 1280), (6, 5120), (7, 20480), (8, 28800), (9, 28800)],
)
def test_backoff_is_exponential_and_capped(attempt, expected):
    assert retry_delay(attempt, base=5, cap=8 * 3600, rand=lambda: 0.5) == pytest.approx(expected)
    assert retry_delay(attempt, base=5, cap=8 * 3600, rand=lambda: 0.0) == pytest.approx(expected * 0.8)
    assert retry_delay(attempt, base=5, cap=8 * 3600, rand=lambda: 0.999999) == pytest.approx(expected * 1.2, rel=1e-5)


def test_default_schedule_retries_for_about_24_hours():
    elapsed, attempts = 0.0, 1
    while not gives_up(
        elapsed=elapsed, delay=retry_delay(attempts, base=5, cap=8 * 3600, rand=lambda: 0.5), window=86400
    ):
        elapsed += retry_delay(attempts, base=5, cap=8 * 3600, rand=lambda: 0.5)
        attempts += 1
    assert attempts == 10  # the first attempt and nine retries
    assert 23 * 3600 < elapsed < 24 * 3600


# --- API, pages, plan, isolation ------------------------------------------------------------------------
def test_owner_manages_endpoints_through_the_api(firm, owner, client_for, receiver, django_capture_on_commit_callbacks):
    c = client_for(owner)
    r = c.post(
        API,
        {"url": receiver.url, "event_types": ["contact.created", "deal.stage_changed"]},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["contact.created", "deal.stage_changed"]
    pk = body["id"]
    assert c.get(API).json()["results"][0]["id"] == pk
    r = c.patch(f"{API}{pk}/", {"description": "CRM sync", "enabled": False}, content_type="application/json")
    assert r.status_code == 200 and r.json()["description"] == "CRM sync" and r.json()["enabled"] is False
    c.patch(f"{API}{pk}/", {"enabled": True}, content_type="application/json")
    old = body["secret"]
    assert c.post(f"{API}{pk}/rotate-secret/").json()["secret"] != old
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(f"{API}{pk}/test/")
    assert r.status_code == 202
    assert json.loads(receiver.requests[-1].body)["type"] == "webhook.test"
    log = c.get(f"{API}{pk}/deliveries/").json()
    assert log["results"][0]["status"] == "succeeded" and log["results"][0]["attempt_log"][0]["status_code"] == 200
    delivery_pk = log["results"][0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(f"/api/v1/webhook-deliveries/{delivery_pk}/replay/")
    assert r.status_code == 202 and len(receiver.requests) == 2
    assert c.delete(f"{API}{pk}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=pk).exists()


def test_unknown_event_type_is_a_field_error(firm, owner, client_for):
    r = client_for(owner).post(
        API, {"url": "https://93.184.215.14/", "event_types": ["contact.exploded"]}, content_type="application/json"
    )
    assert r.status_code == 400 and "event_types" in r.json()["error"]["details"]


def test_delivery_log_query_count_does_not_grow_with_rows(firm, owner, client_for, receiver, django_assert_num_queries):
    endpoint = _endpoint(firm, receiver.url)
    for _ in range(3):
        d = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
        services.delivery_attempt(delivery_id=d.pk)
    c = client_for(owner)
    c.get(f"{API}{endpoint.pk}/deliveries/")  # warm the session and firm caches
    with django_assert_num_queries(7) as ctx:
        r = c.get(f"{API}{endpoint.pk}/deliveries/")
    assert r.status_code == 200 and r.json()["count"] == 3
    baseline = len(ctx.captured_queries)
    for _ in range(5):
        d = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
        services.delivery_attempt(delivery_id=d.pk)
    with django_assert_num_queries(baseline):
        assert c.get(f"{API}{endpoint.pk}/deliveries/").json()["count"] == 8


def test_plan_without_webhooks_gets_402(firm, owner, client_for):
    from billing.models import Plan, Subscription

    with schema_context("public"):
        Subscription.objects.filter(tenant=firm).update(plan=Plan.objects.get(code="starter"))
    r = client_for(owner).post(
        API, {"url": "https://93.184.215.14/", "event_types": ["contact.created"]}, content_type="application/json"
    )
    assert r.status_code == 402 and r.json()["error"]["code"] == "feature_not_in_plan"


def test_no_delivery_for_a_firm_whose_plan_lost_webhooks(firm, owner, receiver, django_capture_on_commit_callbacks):
    from billing.models import Plan, Subscription

    _endpoint(firm, receiver.url)
    with schema_context("public"):
        Subscription.objects.filter(tenant=firm).update(plan=Plan.objects.get(code="starter"))
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_create(actor=owner, tenant=firm, first_name="Plan", email="plan@example.com")
    assert receiver.requests == []


@pytest.mark.parametrize("who", ["advisor", "viewer"])
def test_members_who_are_not_managers_cannot_see_or_change_endpoints(firm, request, client_for, receiver, who):
    endpoint = _endpoint(firm, receiver.url)
    c = client_for(request.getfixturevalue(who))
    assert c.get(API).status_code == 403
    assert c.get(f"{API}{endpoint.pk}/").status_code == 403
    assert c.post(f"{API}{endpoint.pk}/rotate-secret/").status_code == 403
    assert c.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 403


def test_another_firms_users_and_keys_cannot_reach_endpoints_or_deliveries(
    firm, other_firm, owner, outsider, client_for, api_key_for, receiver
):
    endpoint = _endpoint(firm, receiver.url)
    delivery = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    # globex's owner, signed in at globex, with acme's ids: globex's own (empty) schema answers 404
    globex = client_for(outsider, other_firm)
    assert globex.get(API).json()["count"] == 0
    assert globex.get(f"{API}{endpoint.pk}/").status_code == 404
    assert globex.get(f"{API}{endpoint.pk}/deliveries/").status_code == 404
    assert globex.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/").status_code == 404
    assert globex.patch(f"{API}{endpoint.pk}/", {"enabled": False}, content_type="application/json").status_code == 404
    assert globex.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 404
    # globex's session or key at acme's host: not signed in there
    stranger = FirmClient(firm)
    stranger.cookies = globex.cookies
    assert stranger.get(API).status_code == 401
    key = api_key_for(other_firm)
    assert FirmClient(firm).get(API, HTTP_X_API_KEY=key).status_code == 401
    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    # and acme's owner does see it
    assert client_for(owner).get(f"{API}{endpoint.pk}/").json()["url"] == receiver.url


def test_pages_list_create_and_show_the_log(firm, owner, client_for, receiver):
    c = client_for(owner)
    r = c.post("/settings/webhooks/", {"url": receiver.url, "event_types": ["contact.created"], "enabled": "on"})
    assert r.status_code == 302
    endpoint = WebhookEndpoint.objects.get(url=receiver.url)
    d = services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    services.delivery_attempt(delivery_id=d.pk)
    page = c.get(f"/settings/webhooks/{endpoint.pk}/").content.decode()
    assert endpoint.secret in page and d.event.message_id in page and "Send test event" in page
    assert receiver.url in c.get("/settings/webhooks/").content.decode()


def test_page_refuses_a_private_address_in_production(firm, owner, client_for, production_rules):
    r = client_for(owner).post("/settings/webhooks/", {"url": "https://10.0.0.1/", "event_types": ["contact.created"]})
    assert r.status_code == 200 and "private" in r.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_event_catalogue_is_served_and_in_the_schema(firm, owner, client_for):
    c = client_for(owner)
    types = {row["type"] for row in c.get("/api/v1/webhook-events/").json()}
    for name in [
        "contact.created",
        "contact.updated",
        "portfolio.transaction.created",
        "portfolio.transaction.deleted",
        "import.completed",
        "alert.fired",
        "deal.stage_changed",
        "invoice.issued",
        "invoice.paid",
        "invoice.voided",
        "subscription.changed",
        "fee_invoice.issued",
    ]:
        assert name in types
    assert c.get("/api/v1/webhook-events/invoice.paid/").json()["data"]["status"] == "paid"
    schema = c.get("/api/v1/schema/?format=json").json()
    assert "WebhookEventContactCreated" in schema["components"]["schemas"]
    op = schema["paths"]["/api/v1/webhook-events/{type}/"]["get"]
    examples = op["responses"]["200"]["content"]["application/json"]["examples"].values()
    assert "contact.created" in {e["summary"] for e in examples}


def test_long_backoffs_are_left_to_the_sweep_not_a_countdown(
    firm, receiver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from webhooks import tasks

    queued = []
    monkeypatch.setattr(
        tasks.webhook_deliver, "apply_async", lambda args, countdown=None, task_id=None: queued.append(countdown)
    )
    receiver.answer = (500, b"", 0.0, {})
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 5
    settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS = 600
    delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=5)  # the 6th attempt waits ~85 min
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=60)
    assert queued == []  # no countdown task, and none recorded as queued
    assert delivery.task_id == "" and delivery.queued_at is None
    # once due, the sweep queues it, once
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 1
    assert queued == [None]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0
    # a short backoff is queued with its countdown, under the id recorded on the delivery
    queued.clear()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=0, next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_attempt(delivery_id=delivery.pk)
    assert len(queued) == 1 and 3 < queued[0] < 7
    delivery.refresh_from_db()
    assert delivery.task_id and delivery.queued_at is not None


# --- the sweep under a backlog (decision 1040) --------------------------------------------------------
@pytest.fixture
def broker_ledger(private_redis, monkeypatch):
    """A delivery ledger on a private Redis, and a broker that only queues: every task published
    for a delivery is recorded in the ledger (as ``before_task_publish`` does) and waits in
    ``queue``; no worker takes it unless the test says so."""
    from codex import delivery as ledger_module
    from codex.delivery import Ledger
    from webhooks import tasks

    client, url = private_redis
    book = Ledger(client, url)
    ledger_module.set_ledger(book)
    queue: list[tuple[int, str]] = []

    def publish(args, countdown=None, task_id=None):
        book.record(task_id=task_id, message={"task": "webhooks.deliver", "args": args})
        queue.append((args[0], task_id))

    monkeypatch.setattr(tasks.webhook_deliver, "apply_async", publish)
    yield book, queue
    ledger_module.set_ledger(None)


def _work(book, queue, delivery_id):
    """A worker takes the delivery's queued task, runs it and finishes it in the ledger."""
    for item in [q for q in queue if q[0] == delivery_id]:
        queue.remove(item)
        services.delivery_attempt(delivery_id=delivery_id)
        book.finish(item[1])


def test_backlog_of_queued_deliveries_is_never_queued_again(
    firm, owner, receiver, broker_ledger, django_capture_on_commit_callbacks
):
    from codex.outbox.services import event_emit

    book, queue = broker_ledger
    _endpoint(firm, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(40):
            event_emit(type="contact.created", data={"id": i}, resource=f"contact:{i}")
    deliveries = list(WebhookDelivery.objects.filter(event__type="contact.created"))
    assert len(deliveries) == 40 and len(queue) == 40
    assert {d.task_id for d in deliveries} == {task_id for _pk, task_id in queue}
    # A slow worker: every task has waited 20 minutes behind the backlog, each delivery long due.
    long_ago = timezone.now() - timedelta(minutes=20)
    WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        queued_at=long_ago, next_attempt_at=long_ago
    )
    for _minute in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.deliveries_enqueue_due() == 0
    assert len(queue) == 40  # no duplicate task for any delivery
    # The worker gets through part of the backlog; the sweep still adds nothing.
    for d in deliveries[:10]:
        _work(book, queue, d.pk)
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 10
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0
    assert len(queue) == 30 and len(receiver.requests) == 10


def test_a_task_the_broker_lost_is_swept_once(firm, owner, receiver, broker_ledger, django_capture_on_commit_callbacks):
    from codex.outbox.services import event_emit

    book, queue = broker_ledger
    _endpoint(firm, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            event_emit(type="contact.created", data={"id": i}, resource=f"contact:{i}")
    lost_pk, lost_task = queue[0]
    # The broker loses one message (its data, or a publish that failed after the commit): the
    # ledger no longer holds it.
    queue.remove((lost_pk, lost_task))
    book.finish(lost_task)
    # Within the grace period after queueing the sweep waits (the publish follows the commit) ...
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0
    long_ago = timezone.now() - timedelta(minutes=5)
    WebhookDelivery.objects.filter(event__type="contact.created").update(queued_at=long_ago, next_attempt_at=long_ago)
    # ... then queues exactly the lost one, under a new task id, and only once.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 1
    assert len(queue) == 3 and queue[-1][0] == lost_pk and queue[-1][1] != lost_task
    assert WebhookDelivery.objects.get(pk=lost_pk).task_id == queue[-1][1]
    WebhookDelivery.objects.filter(pk=lost_pk).update(queued_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0
    _work(book, queue, lost_pk)
    assert WebhookDelivery.objects.get(pk=lost_pk).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1


def test_a_delivery_whose_worker_died_mid_attempt_is_swept(
    firm, receiver, broker_ledger, django_capture_on_commit_callbacks
):
    book, queue = broker_ledger
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    now = timezone.now()
    assert services._claim(delivery.pk, now)  # a worker took it ...
    delivery.refresh_from_db()
    assert delivery.task_id == "" and delivery.queued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0  # ... and holds its claim
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=now - timedelta(seconds=1))  # ... and died
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 1
    assert queue[-1][0] == delivery.pk


def test_without_a_ledger_a_queued_task_counts_as_lost_only_after_the_visibility_timeout(
    firm, receiver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from webhooks import tasks

    queued = []
    monkeypatch.setattr(
        tasks.webhook_deliver, "apply_async", lambda args, countdown=None, task_id=None: queued.append(task_id)
    )
    settings.WEBHOOKS_QUEUED_LOST_SECONDS = 3600
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.endpoint_send_test(tenant=firm, endpoint=_endpoint(firm, receiver.url))
    assert queued == [delivery.task_id]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        queued_at=timezone.now() - timedelta(minutes=50), next_attempt_at=timezone.now() - timedelta(minutes=50)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 0
    WebhookDelivery.objects.filter(pk=delivery.pk).update(queued_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_enqueue_due() == 1
    assert len(queued) == 2 and queued[1] == WebhookDelivery.objects.get(pk=delivery.pk).task_id
