"""Two-factor authentication: enrolment with QR + manual key, recovery codes, firm requirement,
operators required, API and tokens honour it, events audited."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django_otp.plugins.otp_static.models import StaticToken
from django_tenants.utils import schema_context

from tenants.accounts.models import SealedTOTPDevice, User
from tenants.models import AuditEvent, Tenant
from tests.conftest import PASSWORD, FirmClient
from tests.security.helpers import totp_now, verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _enrol(client) -> tuple[SealedTOTPDevice, list[str]]:
    page = client.get("/accounts/security/2fa/setup/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "otp-key" in body  # QR code as inline SVG and the manual key
    device = SealedTOTPDevice.objects.get(confirmed=False)
    done = client.post("/accounts/security/2fa/setup/", {"code": totp_now(device), "next": "/"})
    assert done.status_code == 200
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", done.content.decode())
    device.refresh_from_db()
    return device, codes


def test_owner_enrols_totp_and_gets_ten_recovery_codes_shown_once(firm, owner, owner_client):
    device, codes = _enrol(owner_client)
    assert device.confirmed and len(codes) == 10
    stored = set(StaticToken.objects.filter(device__user=owner).values_list("token", flat=True))
    assert len(stored) == 10 and not stored & {c for c in codes} and not stored & {c.replace("-", "") for c in codes}
    assert AuditEvent.objects.filter(action="2fa.enabled", actor="owner@acme.test", tenant_slug="acme").exists()
    assert "<code>" not in owner_client.get("/accounts/security/").content.decode()  # never shown again


def test_wrong_code_does_not_enable_two_factor(firm, owner_client):
    owner_client.get("/accounts/security/2fa/setup/")
    response = owner_client.post("/accounts/security/2fa/setup/", {"code": "000000", "next": "/"})
    assert "not right" in response.content.decode()
    assert not SealedTOTPDevice.objects.filter(confirmed=True).exists()


def test_after_enrolment_sign_in_needs_the_second_factor(firm, owner, owner_client):
    device, codes = _enrol(owner_client)
    client = FirmClient(firm)
    response = client.post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    gated = client.get("/accounts/security/")
    assert gated.status_code == 302 and gated["Location"].startswith("/accounts/security/2fa/verify/")
    # the password alone does not open the API through the session either
    assert client.get("/api/v1/me/").status_code in (401, 403)
    wrong = client.post("/accounts/security/2fa/verify/", {"code": "123456", "next": "/"})
    assert "not right" in wrong.content.decode()
    assert AuditEvent.objects.filter(action="2fa.failed", actor="owner@acme.test").exists()
    ok = client.post("/accounts/security/2fa/verify/", {"code": codes[0], "next": "/accounts/security/"})
    assert ok.status_code == 302 and ok["Location"] == "/accounts/security/"
    assert client.get("/accounts/security/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 200
    # a recovery code works once
    again = FirmClient(firm)
    again.post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD})
    reused = again.post("/accounts/security/2fa/verify/", {"code": codes[0], "next": "/"})
    assert "not right" in reused.content.decode()
    assert AuditEvent.objects.filter(action="2fa.verified", details__method="recovery_code").exists()


def test_firm_can_require_two_factor(firm, viewer_client):
    Tenant.objects.filter(pk=firm.pk).update(require_2fa=True)
    firm.require_2fa = True
    from django.core.cache import caches

    caches["tenants"].clear()
    response = viewer_client.get("/accounts/security/")
    assert response.status_code == 302 and "/accounts/security/2fa/setup/" in response["Location"]
    device, codes = _enrol(viewer_client)
    assert viewer_client.get("/accounts/security/").status_code == 200
    # and may not be turned off while required
    response = viewer_client.post("/accounts/security/2fa/disable/")
    assert SealedTOTPDevice.objects.filter(pk=device.pk).exists()


def test_optional_two_factor_can_be_turned_off(firm, advisor_client):
    device, _codes = _enrol(advisor_client)
    advisor_client.post("/accounts/security/2fa/disable/")
    assert not SealedTOTPDevice.objects.filter(pk=device.pk).exists()
    assert AuditEvent.objects.filter(action="2fa.disabled", actor="advisor@acme.test").exists()


def test_token_endpoint_requires_the_code_when_the_user_has_two_factor(firm, owner, owner_client):
    device, _codes = _enrol(owner_client)
    client = FirmClient(firm)
    body = {"email": "owner@acme.test", "password": PASSWORD}
    assert client.post("/api/v1/auth/token/", body, content_type="application/json").status_code == 401
    device.refresh_from_db()
    device.last_t = -1
    device.save()
    ok = client.post("/api/v1/auth/token/", body | {"otp": totp_now(device)}, content_type="application/json")
    assert ok.status_code == 200, ok.content


def test_operator_console_requires_totp_enrolment_then_verification(public_client):
    operator = User.objects.create_superuser("ops-2fa@codex.test", "Sturdy-pass-123")
    response = public_client.post(
        "/admin/login/?next=/admin/", {"username": "ops-2fa@codex.test", "password": "Sturdy-pass-123"}
    )
    assert response.status_code == 302
    gated = public_client.get("/admin/")
    assert gated.status_code == 302 and gated["Location"].startswith("/accounts/security/2fa/setup/")
    assert public_client.get("/admin/tenants/tenant/").status_code == 302
    with schema_context("public"):
        setup = public_client.get("/accounts/security/2fa/setup/?next=/admin/")
        assert "<svg" in setup.content.decode()
        device = SealedTOTPDevice.objects.get(user=operator, confirmed=False)
        done = public_client.post("/accounts/security/2fa/setup/", {"code": totp_now(device), "next": "/admin/"})
    assert done.status_code == 200
    assert public_client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action="2fa.enabled", actor="ops-2fa@codex.test", tenant__isnull=True).exists()


def test_operator_with_device_must_verify_each_sign_in(public_client):
    operator = User.objects.create_superuser("ops-2fa2@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    assert public_client.get("/admin/").status_code == 200
    from django.test import Client

    fresh = Client(HTTP_HOST="localhost")
    fresh.post("/admin/login/?next=/admin/", {"username": "ops-2fa2@codex.test", "password": "Sturdy-pass-123"})
    response = fresh.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/security/2fa/verify/")


def test_a_manager_resets_a_members_lost_two_factor(firm, owner_client, advisor, client_for):
    member = client_for(advisor)
    device, _codes = _enrol(member)
    response = owner_client.post(f"/accounts/team/{advisor.pk}/reset-2fa/")
    assert response.status_code == 302
    assert not SealedTOTPDevice.objects.filter(user=advisor).exists()
    assert not StaticToken.objects.filter(device__user=advisor).exists()
    assert member.get("/accounts/security/").status_code == 302  # signed out everywhere
    assert AuditEvent.objects.filter(action="2fa.reset", actor="owner@acme.test", target="advisor@acme.test").exists()


def test_an_admin_cannot_reset_an_owners_two_factor_nor_an_advisor_anyones(
    firm, owner, admin_user, advisor, client_for
):
    device = SealedTOTPDevice.objects.create(user=owner, name="x", confirmed=True)
    client_for(admin_user).post(f"/accounts/team/{owner.pk}/reset-2fa/")
    assert SealedTOTPDevice.objects.filter(pk=device.pk).exists()
    assert client_for(advisor).post(f"/accounts/team/{owner.pk}/reset-2fa/").status_code == 403
    assert SealedTOTPDevice.objects.filter(pk=device.pk).exists()


def test_operator_console_lists_operator_devices_without_secrets(public_client):
    operator = User.objects.create_superuser("ops-dev@codex.test", "Sturdy-pass-123")
    device = verified_login(public_client, operator)
    page = public_client.get("/admin/accounts/sealedtotpdevice/").content.decode()
    assert "ops-dev@codex.test" in page and device.key not in page
    detail = public_client.get(f"/admin/accounts/sealedtotpdevice/{device.pk}/change/").content.decode()
    assert device.key not in detail
