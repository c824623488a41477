"""API plumbing: schema and docs, the error envelope, API keys, bearer tokens, deny by default."""

import hashlib

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone

from tenants.models import ApiKey

from ..conftest import PASSWORD, FirmClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["acme.localhost", "api.localhost"])
def test_schema_and_docs_are_public(host, firm):
    c = Client(HTTP_HOST=host)
    schema = c.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    docs = c.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content.lower()
    assert b"cdn" not in docs.content.lower()


def test_deny_by_default(anon_client):
    response = anon_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_unknown_route_is_an_enveloped_404(owner_client):
    body = owner_client.get("/api/v1/does-not-exist/").json()
    assert body["error"]["code"] == "not_found"


def test_wrong_method_is_an_enveloped_405(owner_client):
    response = owner_client.delete("/api/v1/me/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_validation_error_names_the_field(owner_client):
    response = owner_client.post("/api/v1/api-keys/", {"scope": "everything"}, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]) == {"name", "scope"}


def test_malformed_json_is_a_400(owner_client):
    response = owner_client.post("/api/v1/api-keys/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_unhandled_error_is_logged_and_enveloped(owner_client, monkeypatch, caplog):
    from tenants import api

    def explode(self, request):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(api.TenantView, "get", explode)
    owner_client.raise_request_exception = False
    response = owner_client.get("/api/v1/tenant/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "kaboom" in caplog.text


def test_throttled_requests_get_429_with_retry_after(firm, api_key_for):
    raw = api_key_for(firm, "read")
    cache.clear()
    c = FirmClient(firm)
    with override_settings(CODEX_PLAN_RATE_MULTIPLIERS={}):  # base rate, whatever the plan
        from rest_framework.settings import api_settings

        from codex.api.throttles import PrincipalRateThrottle

        old = PrincipalRateThrottle.THROTTLE_RATES
        PrincipalRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "principal": "3/min"}
        try:
            codes = [c.get("/api/v1/me/", HTTP_X_API_KEY=raw).status_code for _ in range(4)]
            last = c.get("/api/v1/me/", HTTP_X_API_KEY=raw)
        finally:
            PrincipalRateThrottle.THROTTLE_RATES = old
    assert codes[:3] == [200, 200, 200]
    assert last.status_code == 429
    assert int(last["Retry-After"]) > 0
    assert last.json()["error"]["code"] == "throttled"


def test_me_and_tenant(owner_client, firm):
    me = owner_client.get("/api/v1/me/").json()
    assert me["email"] == "owner@acme.test" and me["role"] == "owner" and me["auth"] == "session"
    assert owner_client.get("/api/v1/tenant/").json()["slug"] == "acme"


def test_api_key_create_shows_key_once_and_stores_only_a_hash(owner_client, firm):
    response = owner_client.post(
        "/api/v1/api-keys/", {"name": "frontend", "scope": "read"}, content_type="application/json"
    )
    assert response.status_code == 201
    raw = response.json()["key"]
    assert raw.startswith("cdx_")
    secret = raw.split("_", 2)[2]
    assert len(secret) >= 22  # 32 random bytes, base64url: 256 bits
    key = ApiKey.objects.get(prefix=response.json()["prefix"])
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    listing = owner_client.get("/api/v1/api-keys/").json()
    assert listing["count"] == 1
    assert "key" not in listing["results"][0]


def test_api_key_authenticates_and_records_last_use(firm, api_key_for):
    raw = api_key_for(firm, "read")
    response = FirmClient(firm).get("/api/v1/me/", HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    assert response.json()["auth"] == "api_key"
    assert ApiKey.objects.get(prefix=raw.split("_")[1]).last_used_at is not None


def test_read_key_cannot_write(firm, api_key_for):
    raw = api_key_for(firm, "read")
    response = FirmClient(firm).post(
        "/api/v1/api-keys/", {"name": "x"}, content_type="application/json", HTTP_X_API_KEY=raw
    )
    assert response.status_code == 403


def test_revoked_key_is_refused(owner_client, firm, api_key_for):
    raw = api_key_for(firm, "read")
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    assert owner_client.post(f"/api/v1/api-keys/{key.pk}/revoke/").status_code == 200
    response = FirmClient(firm).get("/api/v1/me/", HTTP_X_API_KEY=raw)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_expired_key_is_refused(firm, api_key_for):
    raw = api_key_for(firm, "read")
    ApiKey.objects.filter(prefix=raw.split("_")[1]).update(expires_at=timezone.now())
    assert FirmClient(firm).get("/api/v1/me/", HTTP_X_API_KEY=raw).status_code == 401


def test_garbage_key_is_refused(firm):
    for raw in ["", "cdx_", "cdx_abc_def", "nope", "cdx_" + "a" * 500]:
        response = FirmClient(firm).get("/api/v1/me/", HTTP_X_API_KEY=raw or "x")
        assert response.status_code == 401


def test_api_host_resolves_the_firm_from_the_key(firm, api_key_for):
    raw = api_key_for(firm, "read")
    response = Client(HTTP_HOST="api.localhost").get("/api/v1/tenant/", HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"


def test_bearer_token_for_a_firm_user(firm, owner):
    c = FirmClient(firm)
    issued = c.post(
        "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
    )
    assert issued.status_code == 200
    assert issued.json()["expires_in"] <= 15 * 60
    me = c.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.json()['access']}").json()
    assert me["auth"] == "bearer" and me["email"] == "owner@acme.test"


def test_token_with_wrong_password_is_401(firm, owner):
    response = FirmClient(firm).post(
        "/api/v1/auth/token/", {"email": "owner@acme.test", "password": "wrong"}, content_type="application/json"
    )
    assert response.status_code == 401


def test_viewer_cannot_manage_api_keys(viewer_client):
    assert viewer_client.get("/api/v1/api-keys/").status_code == 403
    assert viewer_client.post("/api/v1/api-keys/", {"name": "x"}, content_type="application/json").status_code == 403


def test_api_key_list_query_count_is_constant(owner_client, firm):
    """Session, user, throttle (4 with the database cache; 0 with Redis), count, page: 9 + savepoints."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.services import api_key_create

    for i in range(5):
        api_key_create(tenant=firm, name=f"k{i}")
    owner_client.get("/api/v1/api-keys/")  # warm caches
    with CaptureQueriesContext(connection) as few_ctx:
        few = owner_client.get("/api/v1/api-keys/")
    for i in range(20):
        api_key_create(tenant=firm, name=f"more{i}")
    with CaptureQueriesContext(connection) as many_ctx:
        many = owner_client.get("/api/v1/api-keys/")
    assert few.json()["count"] == 5 and many.json()["count"] == 25
    assert len(few_ctx.captured_queries) == len(many_ctx.captured_queries) <= 11


def test_api_keys_page_shows_key_once(owner_client):
    import re

    response = owner_client.post("/accounts/api-keys/", {"name": "ui key", "scope": "write"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "shown only once" in body
    raw = re.search(r"cdx_[0-9a-f]+_[A-Za-z0-9_-]+", body).group(0)
    again = owner_client.get("/accounts/api-keys/").content.decode()
    assert "ui key" in again
    assert raw not in again
