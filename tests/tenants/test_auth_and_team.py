"""Firm users: sign in, passwords, team management, deactivation ending sessions and tokens."""

import re

import pytest
from django.core import mail, signing
from django.test import override_settings

from tenants.accounts import services
from tenants.accounts.models import Invitation, Role, User
from tenants.models import AuditEvent

from ..conftest import PASSWORD, FirmClient

pytestmark = pytest.mark.django_db


def test_firm_user_signs_in_and_out_on_the_firm_host(firm, owner):
    c = FirmClient(firm)
    response = c.post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert c.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", actor="owner@acme.test", tenant_slug="acme").exists()
    c.post("/accounts/logout/")
    assert c.get("/").status_code == 302


def test_email_is_case_insensitive_at_sign_in(firm, owner):
    c = FirmClient(firm)
    response = c.post("/accounts/login/", {"username": "OWNER@Acme.Test", "password": PASSWORD})
    assert response.status_code == 302


def test_wrong_password_is_refused_and_audited(firm, owner):
    c = FirmClient(firm)
    response = c.post("/accounts/login/", {"username": "owner@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert "correct" in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_failed", tenant_slug="acme").exists()


def test_passwords_are_hashed_with_argon2(owner):
    assert owner.password.startswith("argon2$")


def test_password_change(owner_client, owner):
    response = owner_client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": "Another-strong-pass-7", "new_password2": "Another-strong-pass-7"},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("Another-strong-pass-7")


def test_password_reset_by_email(anon_client, owner):
    response = anon_client.post("/accounts/password/reset/", {"email": "owner@acme.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://acme\.localhost(?::\d+)?(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    page = anon_client.get(link, follow=True)
    assert page.status_code == 200
    set_url = page.redirect_chain[-1][0]
    done = anon_client.post(set_url, {"new_password1": "Fresh-strong-pass-8", "new_password2": "Fresh-strong-pass-8"})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("Fresh-strong-pass-8")


def test_invite_accept_flow(owner_client, firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/accounts/team/", {"email": "new.person@acme.test", "role": "advisor"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://acme\.localhost(?::\d+)?(/accounts/invitation/\S+/)", mail.outbox[0].body).group(1)
    invited = FirmClient(firm)
    form = invited.get(link)
    assert form.status_code == 200 and "new.person@acme.test" in form.content.decode()
    accepted = invited.post(
        link,
        {
            "first_name": "New",
            "last_name": "Person",
            "password": "Strong-pass-456",
            "password_again": "Strong-pass-456",
        },
    )
    assert accepted.status_code == 302
    user = User.objects.get(email="new.person@acme.test")
    assert user.role == Role.ADVISOR
    assert invited.get("/").status_code == 200
    assert invited.get(link).status_code == 400  # used once


def test_invitation_link_expires(owner, firm):
    inv = Invitation.objects.create(email="late@acme.test", role=Role.VIEWER, invited_by=owner)
    token = services.invitation_token(inv)
    with override_settings(CODEX_INVITATION_MAX_AGE=-1):
        response = FirmClient(firm).get(f"/accounts/invitation/{token}/")
    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_forged_invitation_link_is_refused(firm):
    token = signing.dumps({"i": 1, "s": firm.schema_name}, salt="something-else")
    assert FirmClient(firm).get(f"/accounts/invitation/{token}/").status_code == 400


def test_invitation_of_one_firm_is_worthless_at_another(owner, firm, other_firm):
    inv = Invitation.objects.create(email="x@acme.test", role=Role.OWNER, invited_by=owner)
    token = services.invitation_token(inv)
    response = FirmClient(other_firm).get(f"/accounts/invitation/{token}/")
    assert response.status_code == 400


def test_invite_bad_email_shows_form_error(owner_client):
    response = owner_client.post("/accounts/team/", {"email": "not an email", "role": "advisor"})
    assert response.status_code == 200
    assert "valid email" in response.content.decode().lower()
    assert not Invitation.objects.exists()


def test_advisor_cannot_manage_the_team(advisor_client):
    assert advisor_client.get("/accounts/team/").status_code == 403
    assert advisor_client.post("/accounts/team/", {"email": "a@b.test", "role": "owner"}).status_code == 403
    assert not Invitation.objects.exists()


def test_owner_changes_a_role(owner_client, advisor):
    response = owner_client.post(f"/accounts/team/{advisor.pk}/role/", {"role": "viewer"})
    assert response.status_code == 302
    advisor.refresh_from_db()
    assert advisor.role == Role.VIEWER
    assert AuditEvent.objects.filter(action="team.role_changed", target=advisor.email).exists()


def test_admin_cannot_make_an_owner(client_for, admin_user, advisor):
    c = client_for(admin_user)
    c.post(f"/accounts/team/{advisor.pk}/role/", {"role": "owner"})
    advisor.refresh_from_db()
    assert advisor.role == Role.ADVISOR


def test_last_owner_cannot_be_demoted(owner, admin_user):
    with pytest.raises(Exception, match="at least one active owner"):
        services.user_change_role(actor=owner, user=owner, role=Role.ADVISOR, tenant=None)


def test_deactivation_ends_sessions_and_tokens(owner_client, client_for, advisor, firm):
    advisor_client = client_for(advisor)
    assert advisor_client.get("/").status_code == 200
    token = (
        FirmClient(firm)
        .post("/api/v1/auth/token/", {"email": advisor.email, "password": PASSWORD}, content_type="application/json")
        .json()["access"]
    )
    bearer = FirmClient(firm)
    assert bearer.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    # The first POST only asks for confirmation (docs/decisions/0403); nothing changes yet.
    assert owner_client.post(f"/accounts/team/{advisor.pk}/deactivate/").status_code == 200
    assert advisor_client.get("/").status_code == 200
    response = owner_client.post(f"/accounts/team/{advisor.pk}/deactivate/", {"confirmed": "yes"})
    assert response.status_code == 302
    assert advisor_client.get("/").status_code == 302  # back to the login page
    assert bearer.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    relogin = FirmClient(firm).post("/accounts/login/", {"username": advisor.email, "password": PASSWORD})
    assert relogin.status_code == 200  # refused: form shown again


def test_sign_out_everywhere_revokes_bearer_tokens(firm, owner):
    c = FirmClient(firm)
    token = c.post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, content_type="application/json"
    ).json()["access"]
    assert c.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    services.user_sign_out_everywhere(user=owner)
    assert c.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
