"""The public site on the base domain: pricing from the plans, status from /ready, find your firm."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django_tenants.utils import schema_context

from billing.models import Plan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.clear()
    yield


def test_pricing_page_is_generated_from_public_plans(public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Plan.objects.create(code="boutique", name="Boutique", price_month="77.00", max_portfolios=42, sort_order=9)
        Plan.objects.create(code="secret", name="Secret deal", price_month="1.00", is_public=False)
    html = public_client.get("/pricing/").content.decode()
    assert "Boutique" in html and "$77.00" in html and "42 portfolios" in html
    assert "Secret deal" not in html
    assert "Starter" in html and "Recommended" in html  # the default sign-up plan is marked


def test_status_page_mirrors_ready(public_client, monkeypatch):
    ok = public_client.get("/status/")
    assert ok.status_code == 200 and b"All systems operational" in ok.content

    from codex import health

    monkeypatch.setattr(health, "readiness", lambda: (False, {"database": "unreachable"}))
    down = public_client.get("/status/")
    assert down.status_code == 503
    assert b"Service degraded" in down.content and b"unreachable" in down.content


def test_find_your_firm_emails_the_firms_of_a_known_address(public_client):
    response = public_client.post("/find-your-firm/", {"email": "OWNER@acme.test"})
    assert response.status_code == 200 and b"Check your e-mail" in response.content
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@acme.test"]
    assert "http://acme.localhost" in message.body and "/accounts/login/" in message.body
    assert "globex" not in message.body


def test_find_your_firm_lists_every_firm_of_the_address(public_client, firm, other_firm):
    from tenants.accounts.models import User

    with schema_context(other_firm.schema_name):
        User.objects.create_user("owner@acme.test", "x-Long-password-1")
    public_client.post("/find-your-firm/", {"email": "owner@acme.test"})
    assert "acme.localhost" in mail.outbox[0].body and "globex.localhost" in mail.outbox[0].body


def test_find_your_firm_answers_the_same_for_an_unknown_address(public_client):
    def page(email: str) -> str:
        html = public_client.post("/find-your-firm/", {"email": email}).content.decode().replace(email, "X")
        # Per-response tokens (CSP nonce, CSRF) differ anyway; everything else must be identical.
        return re.sub(r'(nonce|value)="[^"]*"', "", html)

    assert page("owner@acme.test") == page("nobody@nowhere.test")
    assert len(mail.outbox) == 1  # only the known address got mail


def test_find_your_firm_is_rate_limited_per_address_silently_and_per_ip_openly(public_client):
    for _ in range(5):
        assert public_client.post("/find-your-firm/", {"email": "owner@acme.test"}).status_code == 200
    assert len(mail.outbox) == 3  # per-address cap: no more mail, same answer
    responses = [public_client.post("/find-your-firm/", {"email": f"p{i}@x.test"}) for i in range(6)]
    assert responses[-1].status_code == 429 and responses[-1]["Retry-After"]


def test_find_your_firm_form_errors_keep_input(public_client):
    response = public_client.post("/find-your-firm/", {"email": "not-an-email"})
    assert response.status_code == 200
    assert b'value="not-an-email"' in response.content and b"Enter a valid email address" in response.content
    assert mail.outbox == []


def test_firms_for_email_skips_closed_firms(firm):
    from tenants.find_firm import firms_for_email
    from tenants.models import Tenant

    assert [t.slug for t in firms_for_email("owner@acme.test")] == ["acme"]
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Tenant.objects.filter(pk=firm.pk).update(status="closed")
    assert firms_for_email("owner@acme.test") == []


def test_pricing_page_words_limits_as_a_person_would(public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Plan.objects.create(
            code="solo", name="Solo", price_month="9.00", max_seats=1, max_portfolios=1, max_contacts=2500,
            max_api_calls_month=1_000_000, sort_order=8,
        )  # fmt: skip
    html = public_client.get("/pricing/").content.decode()
    solo = html[html.index('id="plan-solo"') :]
    solo = solo[: solo.index("</ul>")]
    assert "One user" in solo and "Up to 1 users" not in solo
    assert "1 portfolio<" in solo and "2,500 contacts" in solo and "1,000,000 API calls a month" in solo
