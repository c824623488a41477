"""Host resolution, the host cache, suspended firms, unknown hosts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import Domain, TenantStatus
from tenants.services import tenant_reactivate, tenant_suspend

pytestmark = pytest.mark.django_db


def _tenant_queries(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "tenants_domain" in q["sql"] or "tenants_tenant" in q["sql"]]


def test_warm_request_makes_no_tenant_query(anon_client):
    anon_client.get("/accounts/login/")  # warms the host cache
    with CaptureQueriesContext(connection) as ctx:
        response = anon_client.get("/accounts/login/")
    assert response.status_code == 200
    assert _tenant_queries(ctx) == []


def test_cold_request_looks_the_host_up_once(anon_client):
    with CaptureQueriesContext(connection) as ctx:
        response = anon_client.get("/accounts/login/")
    assert response.status_code == 200
    assert len(_tenant_queries(ctx)) == 1


def test_firm_host_serves_its_own_firm(anon_client, firm):
    response = anon_client.get("/accounts/login/")
    assert f"Sign in to {firm.name}" in response.content.decode()


def test_unknown_host_is_a_404_page_without_stack_trace(client):
    response = client.get("/", HTTP_HOST="nobody.localhost")
    assert response.status_code == 404
    body = response.content.decode()
    assert "No firm here" in body
    assert "Traceback" not in body


def test_unknown_host_api_is_a_json_404(client):
    response = client.get("/api/v1/me/", HTTP_HOST="nobody.localhost")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_new_custom_domain_takes_effect_at_once(client, firm):
    assert client.get("/accounts/login/", HTTP_HOST="wealth.example.com").status_code == 404
    Domain.objects.create(domain="wealth.example.com", tenant=firm, is_primary=False)
    response = client.get("/accounts/login/", HTTP_HOST="wealth.example.com")
    assert response.status_code == 200
    assert firm.name in response.content.decode()


def test_renamed_domain_stops_serving_old_host_at_once(client, firm):
    domain = Domain.objects.create(domain="old.example.com", tenant=firm, is_primary=False)
    assert client.get("/accounts/login/", HTTP_HOST="old.example.com").status_code == 200
    domain.domain = "new.example.com"
    domain.save()
    assert client.get("/accounts/login/", HTTP_HOST="old.example.com").status_code == 404
    assert client.get("/accounts/login/", HTTP_HOST="new.example.com").status_code == 200


def test_suspension_takes_effect_at_once_and_reactivation_too(owner_client, firm):
    assert owner_client.get("/").status_code == 200  # warm cache with the active firm
    tenant_suspend(tenant=firm, actor="test", reason="test")
    response = owner_client.get("/")
    assert response.status_code == 403
    assert "is suspended" in response.content.decode()
    api = owner_client.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "tenant_suspended"
    tenant_reactivate(tenant=firm, actor="test")
    assert owner_client.get("/").status_code == 200


def test_closed_firm_keeps_its_data_and_shows_a_clear_page(owner_client, firm, owner):
    from tenants.services import tenant_close

    tenant_close(tenant=firm, actor="test")
    response = owner_client.get("/")
    assert response.status_code == 403
    assert "is closed" in response.content.decode()
    firm.refresh_from_db()
    assert firm.status == TenantStatus.CLOSED
    from tenants.accounts.models import User

    assert User.objects.filter(pk=owner.pk).exists()


def test_health_stays_open_for_a_suspended_firm(client, firm):
    tenant_suspend(tenant=firm, actor="test", reason="test")
    assert client.get("/health", HTTP_HOST="acme.localhost").status_code == 200


def test_other_firm_is_unaffected_by_a_suspension(outsider_client, firm):
    tenant_suspend(tenant=firm, actor="test", reason="test")
    assert outsider_client.get("/").status_code == 200


def test_suspended_firm_can_still_reach_its_billing_page_to_pay(owner_client, firm):
    tenant_suspend(tenant=firm, actor="test", reason="test")
    assert owner_client.get("/").status_code == 403
    assert "see your invoices" in owner_client.get("/").content.decode()
    billing = owner_client.get("/billing/")
    assert billing.status_code == 200
    assert owner_client.get("/accounts/login/").status_code in (200, 302)


def test_closed_firm_cannot_reach_billing(owner_client, firm):
    from tenants.services import tenant_close

    tenant_close(tenant=firm, actor="test")
    assert owner_client.get("/billing/").status_code == 403
