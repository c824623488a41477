"""The firm's billing API and pages: read for members, change for owners/admins, proration preview,
Idempotency-Key replay and conflicts, 403s recorded by role."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import IdempotencyRecord, PendingItem, Subscription
from tenants.models import AuditEvent

from .conftest import activate

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def starter_now(firm):
    """acme on Starter monthly, in a period that contains now."""
    now = timezone.now()
    return activate(firm, code="starter", anchor=now.replace(microsecond=0) - timezone.timedelta(days=3))


def _post(client, path, data, key=None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, json.dumps(data), content_type="application/json", **extra)


def test_subscription_endpoint_for_members_and_api_keys(viewer_client, client, api_key_for, firm):
    body = viewer_client.get("/api/v1/billing/subscription/").json()
    assert body["plan"]["code"] == "pro" and body["status"] == "trialing" and body["effective_plan"] == "pro"
    key = api_key_for(firm, "read")
    assert client.get("/api/v1/billing/subscription/", HTTP_HOST="api.localhost", HTTP_X_API_KEY=key).status_code == 200


def test_anonymous_gets_401(anon_client):
    assert anon_client.get("/api/v1/billing/subscription/").status_code in (401, 403)
    assert anon_client.get("/billing/").status_code == 302


def test_preview_get_and_post_write_nothing(owner_client, starter_now):
    r = owner_client.get("/api/v1/billing/plan-change/?plan=pro&interval=month")
    assert r.status_code == 200
    preview = r.json()
    assert preview["to_plan"] == "pro" and D(preview["credit"]) < 0 < D(preview["charge"]) and preview["allowed"]
    r2 = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro", "preview": True})
    assert r2.status_code == 200 and r2.json()["to_plan"] == "pro" and D(r2.json()["charge"]) > 0
    assert Subscription.objects.get(pk=starter_now.pk).plan.code == "starter"
    assert not PendingItem.objects.filter(subscription=starter_now).exists()


def test_owner_changes_plan_via_api_and_it_is_audited(owner_client, starter_now, firm):
    r = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro", "interval": "month"})
    assert r.status_code == 201, r.content
    assert r.json()["subscription"]["plan"]["code"] == "pro"
    assert PendingItem.objects.filter(subscription=starter_now).count() == 2
    assert AuditEvent.objects.filter(action="billing.plan_changed", tenant=firm, actor="owner@acme.test").exists()


def test_idempotency_key_replays_the_first_response(owner_client, starter_now):
    first = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro"}, key="k-1")
    again = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro"}, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert PendingItem.objects.filter(subscription=starter_now).count() == 2  # changed once
    assert IdempotencyRecord.objects.filter(key="k-1").count() == 1


def test_same_key_with_a_different_body_is_a_422(owner_client, starter_now):
    _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro"}, key="k-2")
    r = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "enterprise"}, key="k-2")
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert Subscription.objects.get(pk=starter_now.pk).plan.code == "pro"


def test_a_failed_request_does_not_burn_the_key(owner_client, starter_now):
    bad = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "nope"}, key="k-3")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["plan"]
    assert not IdempotencyRecord.objects.filter(key="k-3").exists()
    assert _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro"}, key="k-3").status_code == 201


def test_keys_are_per_firm(owner_client, outsider_client, starter_now, other_firm):
    activate(other_firm, code="starter", anchor=starter_now.current_period_start)
    assert _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "pro"}, key="shared").status_code == 201
    r = _post(outsider_client, "/api/v1/billing/plan-change/", {"plan": "enterprise"}, key="shared")
    assert r.status_code == 201 and r.json()["subscription"]["plan"]["code"] == "enterprise"


def test_downgrade_refused_in_api_with_the_reason(owner_client, firm):
    activate(firm, code="pro", anchor=timezone.now().replace(microsecond=0) - timezone.timedelta(days=1))
    r = _post(owner_client, "/api/v1/billing/plan-change/", {"plan": "free"})
    assert r.status_code == 400
    assert "Free allows 1 seats" in r.json()["error"]["details"]["plan"][0]


@pytest.mark.parametrize("who", ["advisor_client", "viewer_client"])
def test_non_managers_cannot_change_plan(request, who, starter_now):
    client = request.getfixturevalue(who)
    r = _post(client, "/api/v1/billing/plan-change/", {"plan": "pro"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    assert client.get("/billing/change/?plan=pro&interval=month").status_code == 403
    assert client.post("/billing/cancel/").status_code == 403
    assert client.get("/billing/").status_code == 200  # reading is fine


def test_write_api_key_cannot_change_plan(client, api_key_for, firm, starter_now):
    key = api_key_for(firm, "write")
    r = client.post(
        "/api/v1/billing/plan-change/",
        json.dumps({"plan": "pro"}),
        content_type="application/json",
        HTTP_HOST="api.localhost",
        HTTP_X_API_KEY=key,
    )
    assert r.status_code == 403


def test_cancel_and_reactivate_via_api(owner_client, starter_now):
    r = owner_client.post("/api/v1/billing/cancel/")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
    r = owner_client.post("/api/v1/billing/reactivate/")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
    assert owner_client.post("/api/v1/billing/reactivate/").status_code == 400


# --- Pages -------------------------------------------------------------------------------------------
def test_billing_page_shows_plan_meters_and_change_form_to_owner(owner_client, starter_now):
    page = owner_client.get("/billing/").content.decode()
    assert "Your plan: Starter" in page and "Preview the change" in page and "Cancel at the end" in page


def test_billing_page_read_only_for_viewer(viewer_client, starter_now):
    page = viewer_client.get("/billing/").content.decode()
    assert "Your plan: Starter" in page and "Only the firm's owners and admins" in page
    assert "Preview the change" not in page


def test_change_page_previews_then_confirms(owner_client, starter_now):
    preview = owner_client.get("/billing/change/?plan=pro&interval=month")
    body = preview.content.decode()
    assert preview.status_code == 200 and "Credit for unused time on Starter" in body and "Confirm the change" in body
    assert Subscription.objects.get(pk=starter_now.pk).plan.code == "starter"
    done = owner_client.post("/billing/change/", {"plan": "pro", "interval": "month"})
    assert done.status_code == 302 and done["Location"] == "/billing/"
    assert Subscription.objects.get(pk=starter_now.pk).plan.code == "pro"


def test_change_page_explains_a_refused_downgrade(owner_client, firm):
    activate(firm, code="pro", anchor=timezone.now().replace(microsecond=0) - timezone.timedelta(days=1))
    body = owner_client.get("/billing/change/?plan=free&interval=month").content.decode()
    assert "This change is not possible yet" in body and "Free allows 1 seats" in body
    r = owner_client.post("/billing/change/", {"plan": "free", "interval": "month"})
    assert r.status_code == 400 and "Free allows 1 seats" in r.content.decode()


def test_change_page_bad_plan_is_a_form_error(owner_client, starter_now):
    r = owner_client.get("/billing/change/?plan=nope&interval=month")
    assert r.status_code == 400 and "Select a valid choice" in r.content.decode()


def test_cancel_page_flow(owner_client, starter_now):
    r = owner_client.post("/billing/cancel/", follow=True)
    assert "Your subscription ends on" in r.content.decode()
    assert Subscription.objects.get(pk=starter_now.pk).cancel_at_period_end
    r = owner_client.post("/billing/reactivate/", follow=True)
    assert "active again" in r.content.decode()


def test_interval_switch_in_ui_redirects_to_the_new_invoice(owner_client, starter_now):
    r = owner_client.post("/billing/change/", {"plan": "pro", "interval": "year"})
    assert r.status_code == 302 and r["Location"].startswith("/billing/invoices/")
    page = owner_client.get(r["Location"]).content.decode()
    assert "Pro plan (yearly)" in page and "Unused time on Starter" in page


def test_billing_page_query_count_is_bounded(owner_client, starter_now, django_assert_max_num_queries):
    owner_client.get("/billing/")
    with django_assert_max_num_queries(25):
        assert owner_client.get("/billing/").status_code == 200


def test_change_preview_says_amounts_are_before_tax(owner_client, firm, starter_now):
    from billing.models import BillingProfile

    BillingProfile.objects.create(tenant=firm, tax_rate=D("0.2"))
    body = owner_client.get("/billing/change/?plan=pro&interval=month").content.decode()
    assert "Amounts are before tax (20 %)" in body


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (D("1234.5"), "USD", "$1,234.50"),
        (D("1234.5000"), "USD", "$1,234.50"),
        (D("-32.67"), "EUR", "−€32.67"),
        (D("1235"), "JPY", "¥1,235"),
        (D("0.0125"), "USD", "$0.0125"),  # a per-1,000 price finer than a cent keeps its digits
        (D("0.5000"), "USD", "$0.50"),
    ],
)
def test_money_filter(amount, currency, shown):
    from billing.templatetags.billing_format import money, thousands

    assert money(amount, currency) == shown
    assert thousands(1_000_000) == "1,000,000" and thousands(None) == "Unlimited"


def test_ended_subscription_page_offers_a_restart(owner_client, firm, starter_now):
    from billing import services

    services.subscription_cancel(tenant=firm, actor="o")
    services.invoice_run(now=starter_now.current_period_end, subscription_ids=[starter_now.pk])
    body = owner_client.get("/billing/").content.decode()
    assert "Your subscription ended" in body and "the limits of the Free plan apply" in body
    assert "Restart Starter" in body
    r = owner_client.post("/billing/reactivate/", follow=True)
    assert "active again" in r.content.decode()
    assert Subscription.objects.get(pk=starter_now.pk).status == "active"
