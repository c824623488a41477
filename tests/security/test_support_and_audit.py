"""Operator support sessions (read-only, time-limited, audited, visible to owners) and the firm's
audit log (owners only, append-only)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from tenants.accounts.models import User
from tenants.models import AuditEvent
from tenants.services import audit_record
from tests.conftest import FirmClient
from tests.security.helpers import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def operator_client(public_client):
    operator = User.objects.create_superuser("support-ops@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    return public_client


def _support_link(operator_client, firm, reason="Ticket 4711: client list does not load") -> str:
    response = operator_client.post(f"/admin/tenants/tenant/{firm.pk}/support/", {"reason": reason})
    assert response.status_code == 302, response.content.decode()[:500]
    match = re.match(r"^https?://acme\.localhost(?::\d+)?(/accounts/support/enter/[^/]+/)$", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def test_support_session_needs_a_reason(operator_client, firm):
    page = operator_client.post(f"/admin/tenants/tenant/{firm.pk}/support/", {"reason": "x"})
    assert page.status_code == 200
    assert not AuditEvent.objects.filter(action="support.requested").exists()


def test_support_session_is_read_only_bannered_and_audited(operator_client, firm, owner_client):
    path = _support_link(operator_client, firm)
    support = FirmClient(firm)
    assert support.get(path).status_code == 302
    page = support.get("/accounts/password/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Read-only support session" in body and "Ticket 4711" in body
    # every unsafe method is refused, pages and API alike
    assert support.post("/accounts/team/", {"email": "x@y.test", "role": "viewer"}).status_code == 403
    api = support.post("/api/v1/api-keys/", {"name": "k"}, content_type="application/json")
    assert api.status_code == 403 and api.json()["error"]["code"] == "support_read_only"
    assert support.get("/api/v1/me/").status_code == 200
    # not an owner: no audit log, no API keys page
    refused = support.get("/accounts/audit/")
    assert refused.status_code == 403 and "Read-only support session" in refused.content.decode()
    # the owners see it
    log = owner_client.get("/accounts/audit/").content.decode()
    assert "support.started" in log and "support-ops@codex.test" in log and "Ticket 4711" in log
    # ending it is allowed and audited
    assert support.post("/accounts/support/end/").status_code == 302
    assert support.get("/accounts/password/change/").status_code == 302
    assert AuditEvent.objects.filter(action="support.ended", tenant_slug="acme").exists()


def test_support_link_works_once_and_only_at_its_firm(operator_client, firm, other_firm):
    path = _support_link(operator_client, firm)
    assert FirmClient(other_firm).get(path).status_code == 400
    assert FirmClient(firm).get(path).status_code == 302
    assert FirmClient(firm).get(path).status_code == 400  # used


def test_support_session_expires(operator_client, firm, time_machine_now, settings):
    path = _support_link(operator_client, firm)
    support = FirmClient(firm)
    support.get(path)
    time_machine_now.shift(settings.CODEX_SUPPORT_SESSION_SECONDS + 1)
    assert support.get("/accounts/password/change/").status_code == 302
    assert AuditEvent.objects.filter(action="support.ended", details__how="expired").exists()


def test_firm_users_and_staff_without_superuser_cannot_open_support(public_client, firm):
    with schema_context("public"):
        staff = User.objects.create_user("staff@codex.test", "Sturdy-pass-123", is_staff=True)
    verified_login(public_client, staff)
    response = public_client.post(f"/admin/tenants/tenant/{firm.pk}/support/", {"reason": "just looking around"})
    assert response.status_code in (302, 403)
    assert not AuditEvent.objects.filter(action="support.requested").exists()


# --- audit log ---------------------------------------------------------------------------------------------
def test_owner_sees_own_firms_events_only(firm, other_firm, owner_client):
    audit_record(action="team.invited", actor="owner@acme.test", tenant=firm, target="marker-acme@x.test")
    audit_record(action="team.invited", actor="owner@globex.test", tenant=other_firm, target="marker-globex@x.test")
    page = owner_client.get("/accounts/audit/").content.decode()
    assert "marker-acme@x.test" in page and "marker-globex@x.test" not in page
    api = owner_client.get("/api/v1/audit-events/").json()
    targets = {row["target"] for row in api["results"]}
    assert "marker-acme@x.test" in targets and "marker-globex@x.test" not in targets


@pytest.mark.parametrize("who", ["advisor_client", "viewer_client"])
def test_non_owners_cannot_see_the_audit_log(request, who):
    client = request.getfixturevalue(who)
    assert client.get("/accounts/audit/").status_code == 403
    assert client.get("/api/v1/audit-events/").status_code == 403


def test_api_keys_cannot_read_the_audit_log(firm, api_key_for):
    raw = api_key_for(firm, "write")
    assert FirmClient(firm).get("/api/v1/audit-events/", HTTP_X_API_KEY=raw).status_code == 403


def _queries(client, path) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_audit_log_query_count_does_not_grow_with_rows(firm, owner_client):
    audit_record(action="x.test", actor="a", tenant=firm)
    _queries(owner_client, "/api/v1/audit-events/")  # warm the plan memo and caches
    few_api, few_page = _queries(owner_client, "/api/v1/audit-events/"), _queries(owner_client, "/accounts/audit/")
    for i in range(40):
        audit_record(action="x.test", actor=f"a{i}", tenant=firm)
    assert _queries(owner_client, "/api/v1/audit-events/") == few_api
    assert _queries(owner_client, "/accounts/audit/") == few_page


def test_audit_api_has_no_write_methods(firm, owner_client):
    event = audit_record(action="x.test", actor="a", tenant=firm)
    assert owner_client.post("/api/v1/audit-events/", {"action": "y"}).status_code == 405
    assert owner_client.delete(f"/api/v1/audit-events/{event.pk}/").status_code == 404


def test_role_changes_invitations_and_api_keys_are_audited(firm, owner, advisor, owner_client):
    owner_client.post(f"/accounts/team/{advisor.pk}/role/", {"role": "viewer"})
    owner_client.post("/accounts/team/", {"email": "new-person@acme.test", "role": "advisor"})
    owner_client.post("/accounts/api-keys/", {"name": "ci", "scope": "read"})
    actions = set(AuditEvent.objects.filter(tenant_slug="acme").values_list("action", flat=True))
    assert {"team.role_changed", "team.invited", "api_key.created"} <= actions


def test_exports_are_audited_for_pages_and_api(firm, owner_client, api_key_for):
    assert owner_client.get("/crm/export/contacts.csv").status_code == 200
    raw = api_key_for(firm, "read")
    assert FirmClient(firm).get("/api/v1/deals/export/", HTTP_X_API_KEY=raw).status_code == 200
    events = AuditEvent.objects.filter(action="data.exported", tenant_slug="acme")
    assert {e.target for e in events} == {"/crm/export/contacts.csv", "/api/v1/deals/export/"}
    assert {e.actor.split(":")[0] for e in events} == {"owner@acme.test", "api-key"}
