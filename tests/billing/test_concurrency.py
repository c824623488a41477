"""Concurrent invoice runs on REAL separate database connections (one per thread).

The rows these tests race on must be committed, so they cannot live in the usual rolled-back test
transaction (and ``transaction=True`` would flush the shared firms). The fixture below commits its
own throwaway firms (public rows only, no schema) in a year no other test uses, and deletes every
row it caused afterwards, including the invoice counter of that year.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from billing import services
from billing.models import (
    BillingProfile,
    IdempotencyRecord,
    Invoice,
    InvoiceCounter,
    Payment,
    PendingItem,
    Plan,
    Subscription,
    UsageDaily,
    WebhookEvent,
)
from billing.services import invoicing
from tenants.models import AuditEvent, Tenant

from .factories import bare_subscription

YEAR = 2033
START = datetime(YEAR, 1, 1, tzinfo=UTC)
THREADS = 20


def delete_throwaway(tenant_ids: list[int], years: tuple[int, ...] = (YEAR,)) -> None:
    Payment.objects.filter(tenant_id__in=tenant_ids).delete()
    PendingItem.objects.filter(subscription__tenant_id__in=tenant_ids).delete()
    Invoice.objects.filter(tenant_id__in=tenant_ids).delete()
    UsageDaily.objects.filter(tenant_id__in=tenant_ids).delete()
    BillingProfile.objects.filter(tenant_id__in=tenant_ids).delete()
    IdempotencyRecord.objects.filter(tenant_id__in=tenant_ids).delete()
    slugs = list(Tenant.objects.filter(pk__in=tenant_ids).values_list("slug", flat=True))
    Subscription.objects.filter(tenant_id__in=tenant_ids).delete()
    AuditEvent.objects.filter(tenant_slug__in=slugs).delete()
    Tenant.objects.filter(pk__in=tenant_ids).delete()
    InvoiceCounter.objects.filter(year__in=years).delete()


@pytest.fixture
def committed_subscriptions(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        assert not InvoiceCounter.objects.filter(year=YEAR).exists(), "a previous run leaked rows"
        plan = Plan.objects.get(code="starter")
        subs = [bare_subscription(plan=plan, start=START, seats=2) for _ in range(30)]
        tenant_ids = [s.tenant_id for s in subs]
        try:
            yield subs
        finally:
            connection.set_schema_to_public()
            delete_throwaway(tenant_ids)
            assert not Tenant.objects.filter(pk__in=tenant_ids).exists()
            assert WebhookEvent.objects.count() == 0


def _race(target, n=THREADS):
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    results = []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except BaseException as exc:  # noqa: BLE001 (collected, then asserted empty in the test thread)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_twenty_concurrent_invoice_runs_make_exactly_one_invoice_each(committed_subscriptions):
    ids = [s.pk for s in committed_subscriptions]
    now = datetime(YEAR, 1, 1, 1, tzinfo=UTC)
    results = _race(lambda: services.invoice_run(now=now, subscription_ids=ids))
    assert sum(r.invoices for r in results) == len(ids)
    counts = Invoice.objects.filter(subscription_id__in=ids).values_list("subscription_id", flat=True)
    assert sorted(counts) == sorted(ids)  # one each
    numbers = sorted(Invoice.objects.filter(subscription_id__in=ids).values_list("number", flat=True))
    assert numbers == [f"{settings.CODEX_INVOICE_PREFIX}-{YEAR}-{n:06d}" for n in range(1, len(ids) + 1)]
    assert InvoiceCounter.objects.get(year=YEAR).last_number == len(ids)


def test_unique_constraint_holds_even_without_the_subscription_lock(committed_subscriptions):
    """Bypass the locking: 20 threads insert the same period's invoice; the constraint keeps one."""
    sub_id = committed_subscriptions[0].pk
    now = datetime(YEAR, 1, 1, 1, tzinfo=UTC)

    def insert_unlocked():
        with transaction.atomic():
            sub = Subscription.objects.select_related("plan", "tenant").get(pk=sub_id)  # no FOR UPDATE
            return invoicing._invoice_current_period(sub, now, previous_period=None)

    results = _race(insert_unlocked)
    assert sum(1 for r in results if r is not None) == 1
    assert Invoice.objects.filter(subscription_id=sub_id).count() == 1
    assert Invoice.objects.get(subscription_id=sub_id).number == f"{settings.CODEX_INVOICE_PREFIX}-{YEAR}-000001"


def test_concurrent_duplicate_webhooks_apply_once(committed_subscriptions):
    from billing.services import ProviderEvent

    sub = committed_subscriptions[0]
    services.invoice_run(now=datetime(YEAR, 1, 1, 1, tzinfo=UTC), subscription_ids=[sub.pk])
    invoice = Invoice.objects.get(subscription=sub)
    event = ProviderEvent(
        provider="stripe",
        event_id="evt_concurrent_1",
        type="payment_intent.succeeded",
        payload={"id": "evt_concurrent_1"},
        action="payment",
        invoice_number=invoice.number,
        amount_minor=1000,
        currency="usd",
        external_id="pi_concurrent_1",
    )
    try:
        results = _race(lambda: services.webhook_event_apply(event=event, now=datetime(YEAR, 1, 2, tzinfo=UTC)))
        assert sum(1 for first, _ in results if first) == 1
        invoice.refresh_from_db()
        assert invoice.amount_paid == 10 and Payment.objects.filter(invoice=invoice).count() == 1
    finally:
        WebhookEvent.objects.filter(event_id="evt_concurrent_1").delete()


def test_concurrent_requests_with_one_idempotency_key_run_the_view_once(committed_subscriptions):
    import time as _time

    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory, force_authenticate
    from rest_framework.views import APIView

    from codex.api.idempotency import IdempotentPostMixin

    tenant = committed_subscriptions[0].tenant
    calls = []

    class Caller:  # one credential (user 1 of the firm) sending the same key ten times at once
        is_authenticated = True
        pk = 1

    class SlowCreate(IdempotentPostMixin, APIView):
        permission_classes: list = []
        throttle_classes: list = []

        def post(self, request):
            calls.append(1)
            _time.sleep(0.3)  # keep the first request in flight while the others arrive
            return Response({"created": len(calls)}, status=201)

    view = SlowCreate.as_view()
    factory = APIRequestFactory()

    def call():
        request = factory.post("/x/", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="same-key")
        request.tenant = tenant
        force_authenticate(request, user=Caller())
        response = view(request)
        return response.status_code, response.data

    results = _race(call, n=10)
    assert len(calls) == 1
    assert results == [(201, {"created": 1})] * 10
