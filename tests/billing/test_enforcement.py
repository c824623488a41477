"""Plan enforcement across the product: every domain asks billing.entitlements, the API answers 402
with ``plan_limit_exceeded`` / ``feature_not_in_plan``, and the UI names the billing page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from billing.entitlements import PlanLimitExceeded, check_can_add, check_feature
from billing.models import Plan

from .conftest import activate, utc

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

# Where each limit or feature must be checked (the "grep" half of the verification).
CALLERS = {
    "portfolios": ("portfolios/services/portfolio.py", r'check_can_add\(tenant=\w+, resource="portfolios"'),
    "contacts": ("crm/services/contacts.py", r'check_can_add\(tenant=\w+, resource="contacts"'),
    "contact imports": ("crm/services/imports.py", r'resource="contacts", adding='),
    # tenants sits below billing: it runs the seat checks registered with it, billing's among them.
    "seats (invitations)": ("tenants/accounts/services.py", r"seat_checks_run\(tenant=tenant\)"),
    "seats (billing's check registered)": ("billing/apps.py", r"register_seat_check\(check_can_add_seat\)"),
    "alerts": ("portfolios/alerts/services.py", r'check_feature\(tenant=\w+, feature="alerts"\)'),
    "newsletter": ("crm/newsletter/services.py", r'check_feature\(tenant=\w+, feature="newsletter"\)'),
    "crm imports": ("crm/services/imports.py", r'check_feature\(tenant=\w+, feature="imports"\)'),
    "portfolio imports": ("portfolios/views.py", r'check_feature\(tenant=request.tenant, feature="imports"\)'),
    "api calls": ("codex/settings.py", r'"billing\.metering\.ApiMeteringMiddleware"'),
}


@pytest.mark.parametrize("what", sorted(CALLERS))
def test_every_domain_consults_the_entitlements_service(what):
    path, pattern = CALLERS[what]
    assert re.search(pattern, (ROOT / path).read_text()), f"{what}: {path} no longer checks the plan"


def _set_limits(code: str = "pro", **limits) -> None:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Plan.objects.filter(code=code).update(**limits)


def test_check_can_add_counts_in_the_firm_schema(firm):
    _set_limits(max_seats=5)
    with pytest.raises(PlanLimitExceeded) as exc:
        check_can_add(tenant=firm, resource="seats")
    assert (exc.value.allowed, exc.value.used, exc.value.code) == (5, 5, "plan_limit_exceeded")
    assert "/billing/" in str(exc.value)
    check_can_add(tenant=firm, resource="contacts")  # Pro: 50,000


def test_check_feature_uses_the_effective_plan(firm):
    activate(firm, code="starter")
    with pytest.raises(PlanLimitExceeded) as exc:
        check_feature(tenant=firm, feature="newsletter")
    assert exc.value.code == "feature_not_in_plan" and "Starter plan does not include newsletter" in str(exc.value)
    check_feature(tenant=firm, feature="alerts")


def test_contact_limit_is_402_in_the_api_and_explained_in_the_ui(owner_client, firm):
    _set_limits(max_contacts=0)
    r = owner_client.post("/api/v1/contacts/", json.dumps({"first_name": "Ada"}), content_type="application/json")
    assert r.status_code == 402
    error = r.json()["error"]
    assert error["code"] == "plan_limit_exceeded"
    assert error["details"] == {"limit": "contacts", "allowed": 0, "used": 0, "billing_url": "/billing/"}
    page = owner_client.post("/crm/contacts/new/", {"first_name": "Ada", "lifecycle": "lead"})
    assert "Pro plan allows 0 contacts" in page.content.decode()
    assert '<a href="/billing/">See your plan and usage</a>' in page.content.decode()


def test_portfolio_limit_is_402_in_the_api(owner_client, owner, firm):
    _set_limits(max_portfolios=0)
    r = owner_client.post(
        "/api/v1/portfolios/", json.dumps({"name": "Growth", "advisor": owner.pk}), content_type="application/json"
    )
    assert r.status_code == 402 and r.json()["error"]["code"] == "plan_limit_exceeded"
    assert r.json()["error"]["details"]["limit"] == "portfolios"


def test_newsletter_feature_is_402_in_the_api(owner_client, firm):
    activate(firm, code="starter", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    r = owner_client.post(
        "/api/v1/newsletter/subscribers/", json.dumps({"email": "reader@example.com"}), content_type="application/json"
    )
    assert r.status_code == 402 and r.json()["error"]["code"] == "feature_not_in_plan"


def test_positive_control_the_same_requests_pass_on_pro(owner_client, owner, firm):
    r = owner_client.post("/api/v1/contacts/", json.dumps({"first_name": "Ada"}), content_type="application/json")
    assert r.status_code == 201, r.content
    r = owner_client.post(
        "/api/v1/newsletter/subscribers/", json.dumps({"email": "reader@example.com"}), content_type="application/json"
    )
    assert r.status_code in (200, 201), r.content


def test_invitation_beyond_seats_is_refused_with_the_billing_link(owner_client, firm):
    _set_limits(max_seats=5)
    page = owner_client.post("/accounts/team/", {"email": "new@acme.test", "role": "advisor"})
    body = page.content.decode()
    assert "Pro plan allows 5 seats" in body and "/billing/" in body
