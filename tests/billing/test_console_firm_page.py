"""Issue 25 point 7: the operators' console. A firm's page summarises the firm (plan, status, trial
end, MRR, seats and usage against limits, open invoices, users, last activity, domains) in a fixed
number of queries; the console's first page links revenue and platform status; sections have
readable names."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_tenants.utils import schema_context

from billing.models import Invoice, InvoiceStatus, SubscriptionStatus
from tenants.accounts.models import Role, SealedTOTPDevice, User
from tenants.models import ApiKey, Domain, Tenant

from .conftest import activate, plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        operator = User.objects.create_superuser("ops-console@codex.test", None)
        device = SealedTOTPDevice.objects.create(user=operator, name="test", confirmed=True)
        public_client.force_login(operator)
        session = public_client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return public_client


@pytest.fixture
def acme(firm):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Tenant.objects.get(pk=firm.pk)


def open_invoice(tenant, sub, n: int, total: str) -> Invoice:
    now = timezone.now()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Invoice.objects.create(
            tenant=tenant,
            subscription=sub,
            plan=sub.plan,
            number=f"TEST-{n:04d}",
            status=InvoiceStatus.OPEN,
            currency=sub.plan.currency,
            period_start=now - timedelta(days=400 + 31 * n),
            period_end=now - timedelta(days=370 + 31 * n),
            interval=sub.interval,
            total=Decimal(total),
            due_at=now - timedelta(days=n),
        )


def page_of(client, tenant) -> str:
    response = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_firm_page_summarises_plan_mrr_usage_invoices_users_activity_and_domains(operator_client, acme, owner):
    sub = activate(acme, code="pro")
    pro = plan("pro")
    open_invoice(acme, sub, 1, "120.50")
    with schema_context(acme.schema_name):
        User.objects.filter(pk=owner.pk).update(last_login=timezone.now() - timedelta(hours=2))
    html = page_of(operator_client, acme)
    assert "Plan and billing" in html and pro.name in html
    assert ">Active</a>, period ends" in html  # the subscription's status, linked to it
    mrr = f"{pro.price_month:,.2f}"
    assert f"MRR</th><td>${mrr}" in html  # the formatting layer's money, not "99.0000 USD"
    assert "TEST-0001" in html and "$120.50" in html
    assert "Seats (active users and pending invitations)" in html and "Contacts" in html
    assert f'<td class="num">{pro.max_seats:,}</td>' in html
    assert "owner@acme.test" in html and "Owner" in html
    assert "Last activity" in html and "2\xa0hours ago" in html
    for domain in Domain.objects.filter(tenant_id=acme.pk):
        assert domain.domain in html


def test_trialing_firm_shows_trial_end_and_no_mrr_yet(operator_client, acme):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = acme.subscription
        sub.status = SubscriptionStatus.TRIALING
        sub.trial_ends_at = timezone.now() + timedelta(days=10)
        sub.save()
    html = page_of(operator_client, acme)
    assert "Trial end</th><td>" in html and "left)" in html
    assert "once the trial ends" in html and "MRR</th><td>$0.00" in html


def test_firm_page_query_count_is_pinned_and_does_not_grow(operator_client, acme, owner):
    sub = activate(acme, code="pro")
    open_invoice(acme, sub, 1, "10")
    page_of(operator_client, acme)  # warm caches
    with CaptureQueriesContext(connection) as few:
        page_of(operator_client, acme)
    with schema_context(acme.schema_name):
        for n in range(5):
            User.objects.create_user(f"console-{n}@acme.test", None, role=Role.ADVISOR)
    for n in range(2, 14):
        open_invoice(acme, sub, n, "10")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Domain.objects.create(tenant=acme, domain="console-extra.example", is_primary=False)
        for n in range(3):
            ApiKey.objects.create(tenant=acme, name=f"k{n}", prefix=f"cons{n}", hashed_key="x" * 64)
    with CaptureQueriesContext(connection) as many:
        html = page_of(operator_client, acme)
    assert "console-extra.example" in html
    assert "TEST-0013" in html and "TEST-0004" in html and "TEST-0003" not in html  # the ten oldest due
    assert "$130.00 due" in html  # the open amount covers all 13
    assert len(many) == len(few) == PINNED_QUERIES, "\n".join(q["sql"][:150] for q in many.captured_queries)


# The admin's own 7 (search path, session, operator, device, firm, its domains for the inline, the
# content type) and the summary's 17: members with their counts (1), API keys' last use, domains (2
# and a schema switch), subscription (1 and a switch), open invoices and their sum (2 and a switch),
# seats, invitations, portfolios, contacts in the firm's schema (4 and a switch), API calls (1 and a
# switch). The same for one firm of 1 user or of 100, with 1 invoice or 100.
PINNED_QUERIES = 24


def test_console_home_links_revenue_and_platform_status(operator_client):
    html = operator_client.get("/admin/").content.decode()
    assert 'href="/admin/billing/invoice/revenue/">Revenue</a>' in html
    assert 'href="/admin/platform_status/servicecheck/">Platform status</a>' in html


def test_console_sections_have_readable_names(operator_client):
    html = operator_client.get("/admin/").content.decode()
    sections = re.findall(r'class="section"[^>]*>([^<]*)<', html)
    assert "Two-factor: recovery codes" in sections and "Firms" in sections and "Billing" in sections
    assert not [name for name in sections if "_" in name or name.isupper()], sections
