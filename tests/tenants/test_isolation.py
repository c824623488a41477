"""One firm's credentials mean nothing at another: users, sessions, bearer tokens, API keys.

Each refusal sits beside the positive control that the right firm gets in.
"""

import pytest
from django.test import Client

from ..conftest import PASSWORD, FirmClient

pytestmark = pytest.mark.django_db


def test_user_of_one_firm_cannot_log_in_at_another(firm, other_firm, owner):
    at_other = FirmClient(other_firm).post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert at_other.status_code == 200  # the form again: unknown user there
    at_home = FirmClient(firm).post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert at_home.status_code == 302


def test_session_cookie_of_one_firm_is_anonymous_at_another(owner_client, other_firm):
    assert owner_client.get("/").status_code == 200
    assert owner_client.get("/api/v1/me/").status_code == 200
    stolen = Client(HTTP_HOST="globex.localhost")
    stolen.cookies = owner_client.cookies
    assert stolen.get("/").status_code == 302  # to globex's login page
    assert stolen.get("/api/v1/me/").status_code in (401, 403)


def test_bearer_token_of_one_firm_is_refused_at_another(firm, other_firm, owner):
    token = (
        FirmClient(firm)
        .post(
            "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
        )
        .json()["access"]
    )
    home = FirmClient(firm).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert home.status_code == 200
    away = FirmClient(other_firm).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert away.status_code == 401
    assert "another firm" in away.json()["error"]["message"]


def test_api_key_of_one_firm_is_refused_at_another(firm, other_firm, api_key_for):
    raw = api_key_for(firm, "write")
    assert FirmClient(firm).get("/api/v1/tenant/", HTTP_X_API_KEY=raw).json()["slug"] == "acme"
    away = FirmClient(other_firm).get("/api/v1/tenant/", HTTP_X_API_KEY=raw)
    assert away.status_code == 401


def test_api_host_only_reaches_the_keys_own_firm(firm, other_firm, api_key_for):
    acme_key = api_key_for(firm, "read")
    globex_key = api_key_for(other_firm, "read")
    api = Client(HTTP_HOST="api.localhost")
    assert api.get("/api/v1/tenant/", HTTP_X_API_KEY=acme_key).json()["slug"] == "acme"
    assert api.get("/api/v1/tenant/", HTTP_X_API_KEY=globex_key).json()["slug"] == "globex"


def test_api_keys_listing_never_shows_another_firms_keys(owner_client, outsider_client, firm, other_firm, api_key_for):
    api_key_for(other_firm, "read")
    mine = api_key_for(firm, "read").split("_")[1]
    prefixes = [k["prefix"] for k in owner_client.get("/api/v1/api-keys/").json()["results"]]
    assert prefixes == [mine]
    theirs = [k["prefix"] for k in outsider_client.get("/api/v1/api-keys/").json()["results"]]
    assert mine not in theirs and len(theirs) == 1


def test_outsider_cannot_revoke_another_firms_key(outsider_client, owner_client, firm, api_key_for):
    from tenants.models import ApiKey

    raw = api_key_for(firm, "read")
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    assert outsider_client.post(f"/api/v1/api-keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert owner_client.post(f"/api/v1/api-keys/{key.pk}/revoke/").status_code == 200


def test_operator_admin_is_not_served_on_firm_hosts(owner_client, public_client):
    assert owner_client.get("/admin/").status_code == 404
    assert public_client.get("/admin/").status_code == 302  # to the operators' login


def test_firm_user_cannot_use_the_operator_admin(public_client, owner):
    response = public_client.post("/admin/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 200  # refused: no such operator
