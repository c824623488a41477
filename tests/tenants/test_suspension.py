"""Suspension that is no dead end (issue 25, point 6): a required reason, a page that tells the
firm's people why and what to do (an unpaid invoice only when one exists, with its link; otherwise
a real contact link), and reactivation back to the status before, consistent with billing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Invoice, InvoiceStatus, Subscription, SubscriptionStatus
from tenants.models import AuditEvent, Tenant, TenantStatus
from tenants.services import tenant_reactivate, tenant_set_status, tenant_suspend
from tests.security.helpers import verified_login

pytestmark = pytest.mark.django_db

REASON = "Unusual sign-ins seen from abroad: call us to confirm"


def _set_status(firm, status: str, subscription_status: str | None = None) -> None:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Tenant.objects.filter(pk=firm.pk).update(status=status)
        if subscription_status:
            Subscription.objects.filter(tenant_id=firm.pk).update(status=subscription_status)
    firm.refresh_from_db()


def _open_invoice(firm, number: str = "T-2026-0042") -> Invoice:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = Subscription.objects.get(tenant_id=firm.pk)
        now = timezone.now()
        return Invoice.objects.create(
            tenant=firm,
            subscription=sub,
            plan=sub.plan,
            number=number,
            status=InvoiceStatus.OPEN,
            currency="USD",
            period_start=now - timedelta(days=40),
            period_end=now - timedelta(days=10),
            interval="month",
            subtotal=Decimal("1234.50"),
            total=Decimal("1234.50"),
            due_at=now - timedelta(days=20),
        )


# --- the service -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["", "   "])
def test_suspension_requires_a_reason(firm, reason):
    before = firm.status
    with pytest.raises(ValidationError) as exc:
        tenant_suspend(tenant=firm, actor="op@codex.test", reason=reason)
    assert "reason" in exc.value.message_dict
    firm.refresh_from_db()
    assert firm.status == before


def test_suspension_keeps_the_reason_and_the_status_it_interrupts(firm):
    _set_status(firm, TenantStatus.TRIALING)
    tenant = tenant_suspend(tenant=firm, actor="op@codex.test", reason=REASON)
    assert tenant.status == TenantStatus.SUSPENDED
    assert tenant.suspension_reason == REASON and tenant.status_before_suspension == TenantStatus.TRIALING
    event = AuditEvent.objects.filter(action="tenant.suspended", tenant=firm).latest("id")
    assert event.details == {"from": "trialing", "reason": REASON} and event.actor == "op@codex.test"


def test_reactivating_a_suspended_trial_returns_it_to_trialing(firm):
    _set_status(firm, TenantStatus.TRIALING, SubscriptionStatus.TRIALING)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    tenant = tenant_reactivate(tenant=firm, actor="op2@codex.test")
    assert tenant.status == TenantStatus.TRIALING  # not "active" while billing says trialing
    assert tenant.suspension_reason == "" and tenant.status_before_suspension == ""
    event = AuditEvent.objects.filter(action="tenant.trialing", tenant=firm).latest("id")
    assert event.details["from"] == "suspended" and event.actor == "op2@codex.test"


def test_reactivation_follows_billing_when_the_subscription_moved_on(firm):
    _set_status(firm, TenantStatus.TRIALING, SubscriptionStatus.TRIALING)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    _set_status(firm, TenantStatus.SUSPENDED, SubscriptionStatus.ACTIVE)  # the trial ended meanwhile
    assert tenant_reactivate(tenant=firm, actor="op").status == TenantStatus.ACTIVE


def test_reactivation_without_a_live_subscription_restores_the_status_before(firm):
    _set_status(firm, TenantStatus.PAST_DUE, SubscriptionStatus.CANCELED)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    assert tenant_reactivate(tenant=firm, actor="op").status == TenantStatus.PAST_DUE


def test_dunning_suspension_records_its_reason_too(firm):
    _set_status(firm, TenantStatus.PAST_DUE)
    tenant = tenant_set_status(tenant=firm, status=TenantStatus.SUSPENDED, reason="invoice T-1 unpaid 14 days")
    assert tenant.suspension_reason == "invoice T-1 unpaid 14 days"
    assert tenant.status_before_suspension == TenantStatus.PAST_DUE


# --- the page the firm's people see ------------------------------------------------------------------
def test_suspended_page_tells_why_and_gives_a_contact_link_when_nothing_is_owed(owner_client, firm):
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    response = owner_client.get("/portfolios/")
    html = response.content.decode()
    assert response.status_code == 403
    assert REASON in html
    assert f'href="mailto:{settings.CODEX_SUPPORT_EMAIL}?subject=acme' in html
    assert "unpaid" not in html.lower() and "Open invoice" not in html  # no invoice talk without one


def test_suspended_page_links_the_unpaid_invoice_when_one_exists(owner_client, firm):
    invoice = _open_invoice(firm)
    tenant_suspend(tenant=firm, actor="op", reason="Invoice T-2026-0042 unpaid")
    html = owner_client.get("/").content.decode()
    assert "Invoice T-2026-0042 for $1,234.50 is unpaid" in html
    assert f'href="/billing/invoices/{invoice.pk}/"' in html
    assert owner_client.get(f"/billing/invoices/{invoice.pk}/").status_code == 200  # the link opens
    assert f"mailto:{settings.CODEX_SUPPORT_EMAIL}" in html


def test_suspended_page_tells_a_visitor_only_the_status_and_how_to_sign_in(anon_client, firm):
    _open_invoice(firm)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    response = anon_client.get("/")
    html = response.content.decode()
    assert response.status_code == 403 and "is suspended" in html
    assert REASON not in html and "T-2026-0042" not in html
    assert 'href="/accounts/login/"' in html and f"mailto:{settings.CODEX_SUPPORT_EMAIL}" in html


def test_another_firms_people_never_see_the_suspension(outsider_client, firm, other_firm):
    _open_invoice(firm)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    response = outsider_client.get("/")
    assert response.status_code == 200
    assert REASON not in response.content.decode()


def test_closed_firm_page_points_to_support(owner_client, firm):
    from tenants.services import tenant_close

    tenant_close(tenant=firm, actor="op")
    html = owner_client.get("/").content.decode()
    assert "is closed" in html and f"mailto:{settings.CODEX_SUPPORT_EMAIL}" in html
    assert "Open invoice" not in html


# --- the operator console ----------------------------------------------------------------------------
@pytest.fixture
def operator_client(public_client):
    from tenants.accounts.models import User

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        operator = User.objects.create_superuser("ops-suspend@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    return public_client


def test_operator_reactivates_a_trial_back_to_trialing_from_the_console(operator_client, firm):
    _set_status(firm, TenantStatus.TRIALING, SubscriptionStatus.TRIALING)
    tenant_suspend(tenant=firm, actor="op", reason=REASON)
    response = operator_client.post(
        "/admin/tenants/tenant/", {"action": "reactivate", "_selected_action": [firm.pk]}, follow=True
    )
    assert "Acme Wealth Partners (acme) is trialing again." in response.content.decode()
    firm.refresh_from_db()
    assert firm.status == TenantStatus.TRIALING
    assert AuditEvent.objects.filter(action="tenant.trialing", tenant=firm, actor="ops-suspend@codex.test").exists()


def test_console_suspension_confirmation_lists_the_firms_and_keeps_the_reason_typed(operator_client, firm, other_firm):
    chosen = {"action": "suspend", "_selected_action": [firm.pk, other_firm.pk]}
    page = operator_client.post("/admin/tenants/tenant/", chosen).content.decode()
    assert "Suspend 2 firms?" in page and "(acme)" in page and "(globex)" in page
    too_long = "x" * 501
    refused = operator_client.post("/admin/tenants/tenant/", {**chosen, "confirmed": "yes", "reason": too_long})
    assert refused.status_code == 200 and too_long in refused.content.decode()
    assert not Tenant.objects.filter(pk__in=[firm.pk, other_firm.pk], status="suspended").exists()
    done = operator_client.post("/admin/tenants/tenant/", {**chosen, "confirmed": "yes", "reason": REASON})
    assert done.status_code == 302
    assert Tenant.objects.filter(pk__in=[firm.pk, other_firm.pk], status="suspended").count() == 2
