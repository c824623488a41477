"""Payments (partial, full, refunds), the manual provider, and the Stripe-compatible webhook:
valid, stale, forged and replayed signatures; each event applied once."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from billing import services
from billing.models import Invoice, InvoiceStatus, Payment, PaymentKind, Subscription, SubscriptionStatus, WebhookEvent
from billing.providers import ManualProvider
from billing.signatures import sign_payload
from tenants.models import Tenant, TenantStatus

from .conftest import plan, utc
from .factories import bare_subscription, bare_tenant

D = Decimal
SECRET = "whsec_test_secret"
URL = "/billing/webhooks/stripe/"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_public")]


@pytest.fixture
def invoice():
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))  # 49.00 USD
    services.invoice_run(now=utc(2026, 3, 1, 1), subscription_ids=[sub.pk])
    return Invoice.objects.get(subscription=sub)


def _event(event_type: str, obj: dict, event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "data": {"object": obj}}).encode()


def _post(public_client, body: bytes, *, timestamp: int | None = None, secret: str = SECRET, header: str | None = None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = header if header is not None else sign_payload(body, secret, timestamp)
    with override_settings(STRIPE_WEBHOOK_SECRETS=[SECRET]):
        return public_client.post(URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


def _pi(invoice, amount_minor: int, pi="pi_1"):
    return {"id": pi, "object": "payment_intent", "amount_received": amount_minor, "currency": "usd",
            "metadata": {"invoice_number": invoice.number}}  # fmt: skip


# --- Services ----------------------------------------------------------------------------------------
def test_partial_then_full_payment_marks_paid(invoice):
    services.payment_record(invoice=invoice, amount=D("20.00"), provider="manual", actor="op")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN and invoice.amount_due == D("29.00")
    services.payment_record(invoice=invoice, amount=D("29.00"), provider="manual", actor="op")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_due == 0 and invoice.paid_at


@pytest.mark.parametrize(
    ("amount", "field_error"),
    [
        (D("49.01"), "is due"),
        (D("0"), "more than zero"),
        (D("-5"), "more than zero"),
        (D("1.001"), "decimals"),
        (1.5, "decimal"),
    ],
)
def test_bad_payment_amounts_are_field_errors_and_write_nothing(invoice, amount, field_error):
    with pytest.raises(ValidationError) as exc:
        services.payment_record(invoice=invoice, amount=amount, provider="manual", actor="op")
    assert field_error in " ".join(exc.value.message_dict["amount"])
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_refund_is_recorded_and_capped_at_what_was_paid(invoice):
    ManualProvider().mark_paid(invoice=invoice, actor="op")
    ManualProvider().record_refund(invoice=invoice, amount=D("10.00"), actor="op")
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("10.00") and invoice.status == InvoiceStatus.PAID
    with pytest.raises(ValidationError):
        ManualProvider().record_refund(invoice=invoice, amount=D("39.01"), actor="op")


def test_payment_on_void_or_draft_invoice_refused(invoice):
    services.invoice_void(invoice=invoice, actor="op")
    with pytest.raises(services.BillingStateError):
        services.payment_record(invoice=invoice, amount=D("1.00"), provider="manual", actor="op")


# --- Webhook -----------------------------------------------------------------------------------------
def test_valid_signed_event_records_a_payment(public_client, invoice):
    response = _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 4900)))
    assert response.status_code == 200 and response.json()["duplicate"] is False
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.provider, payment.external_id, payment.amount) == ("stripe", "pi_1", D("49.00"))
    assert WebhookEvent.objects.get(event_id="evt_1").result.startswith("payment 49.00 USD")


def test_replayed_event_is_applied_once(public_client, invoice):
    body = _event("payment_intent.succeeded", _pi(invoice, 1000))
    assert _post(public_client, body).json()["duplicate"] is False
    second = _post(public_client, body)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("10.00") and Payment.objects.filter(invoice=invoice).count() == 1


def test_invoice_paid_and_payment_intent_for_one_payment_count_once(public_client, invoice):
    _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 4900), "evt_a"))
    obj = {
        "id": "in_x",
        "amount_paid": 4900,
        "currency": "usd",
        "payment_intent": "pi_1",
        "metadata": {"invoice_number": invoice.number},
    }
    response = _post(public_client, _event("invoice.paid", obj, "evt_b"))
    assert response.json()["result"] == "already recorded: pi_1"
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_stale_signature_is_rejected(public_client, invoice):
    body = _event("payment_intent.succeeded", _pi(invoice, 4900))
    response = _post(public_client, body, timestamp=int(time.time()) - 301)
    assert response.status_code == 400 and b"StaleSignature" in response.content
    assert not WebhookEvent.objects.exists()


def test_forged_signature_is_rejected(public_client, invoice):
    body = _event("payment_intent.succeeded", _pi(invoice, 4900))
    response = _post(public_client, body, secret="whsec_attacker")
    assert response.status_code == 400 and b"BadSignature" in response.content
    tampered = _post(public_client, body, header=sign_payload(body.replace(b"4900", b"9900"), SECRET, int(time.time())))
    assert tampered.status_code == 400
    assert not Payment.objects.exists() and not WebhookEvent.objects.exists()


def test_missing_signature_and_get_are_rejected(public_client):
    assert _post(public_client, b"{}", header="").status_code == 400
    assert public_client.get(URL).status_code == 405


def test_refund_event_recorded_once_per_refund_id(public_client, invoice):
    _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 4900), "evt_p"))
    charge = {"id": "ch_1", "currency": "usd", "amount_refunded": 1500, "metadata": {"invoice_number": invoice.number},
              "refunds": {"data": [{"id": "re_1", "amount": 1500}]}}  # fmt: skip
    _post(public_client, _event("charge.refunded", charge, "evt_r1"))
    _post(public_client, _event("charge.refunded", charge, "evt_r1_again"))  # new event id, same refund
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("15.00")
    assert Payment.objects.filter(invoice=invoice, kind=PaymentKind.REFUND).count() == 1


def test_unknown_invoice_and_unhandled_types_are_recorded_not_retried(public_client, invoice):
    r1 = _post(public_client, _event("payment_intent.succeeded", {**_pi(invoice, 100), "metadata": {}}, "evt_u"))
    r2 = _post(public_client, _event("customer.created", {"id": "cus_1"}, "evt_c"))
    assert r1.status_code == r2.status_code == 200
    assert WebhookEvent.objects.get(event_id="evt_u").result.startswith("ignored: unknown invoice")
    assert WebhookEvent.objects.get(event_id="evt_c").result.startswith("ignored")


def test_overpayment_and_wrong_currency_are_rejected_with_a_reason(public_client, invoice):
    _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 5000), "evt_o"))
    _post(public_client, _event("payment_intent.succeeded", {**_pi(invoice, 100, "pi_2"), "currency": "eur"}, "evt_e"))
    assert WebhookEvent.objects.get(event_id="evt_o").result.startswith("rejected: Only 49.00 USD is due")
    assert "currency" in WebhookEvent.objects.get(event_id="evt_e").result
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_paying_a_suspended_firm_reactivates_it_at_once(public_client):
    tenant = bare_tenant(status=TenantStatus.SUSPENDED)
    sub = bare_subscription(
        plan=plan("starter"), tenant=tenant, start=utc(2026, 3, 1), status=SubscriptionStatus.PAST_DUE
    )
    services.invoice_run(now=utc(2026, 3, 1, 1), subscription_ids=[sub.pk])
    invoice = Invoice.objects.get(subscription=sub)
    Invoice.objects.filter(pk=invoice.pk).update(due_at=utc(2026, 3, 2))
    response = _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 4900)))
    assert response.status_code == 200
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE
    assert Subscription.objects.get(pk=sub.pk).status == SubscriptionStatus.ACTIVE


def test_refund_without_a_refund_list_uses_the_cumulative_amount(public_client, invoice):
    _post(public_client, _event("payment_intent.succeeded", _pi(invoice, 4900), "evt_p2"))
    charge = {"id": "ch_9", "currency": "usd", "amount_refunded": 900, "metadata": {"invoice_number": invoice.number}}
    _post(public_client, _event("charge.refunded", charge, "evt_c1"))
    _post(public_client, _event("charge.refunded", {**charge, "amount_refunded": 900}, "evt_c1_retry_as_new_id"))
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("9.00")
    _post(public_client, _event("charge.refunded", {**charge, "amount_refunded": 1500}, "evt_c2"))  # 6.00 more
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("15.00")
    assert sorted(Payment.objects.filter(kind="refund").values_list("amount", flat=True)) == [D("6.00"), D("9.00")]


def test_webhook_without_a_configured_secret_is_refused(public_client, invoice):
    body = _event("payment_intent.succeeded", _pi(invoice, 4900))
    with override_settings(STRIPE_WEBHOOK_SECRETS=[]):
        response = public_client.post(
            URL,
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(body, SECRET, int(time.time())),
        )
    assert response.status_code == 400 and not Payment.objects.exists()


def test_rotated_secrets_both_verify(public_client, invoice):
    body = _event("payment_intent.succeeded", _pi(invoice, 100))
    with override_settings(STRIPE_WEBHOOK_SECRETS=["whsec_old", SECRET]):
        response = public_client.post(
            URL,
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(body, "whsec_old", int(time.time())),
        )
    assert response.status_code == 200 and response.json()["duplicate"] is False
