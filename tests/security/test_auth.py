"""Authentication: password rules, sign-in throttling, audit, session rotation and timeouts."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError

from codex.security import ratelimit
from tenants.models import AuditEvent
from tests.conftest import PASSWORD, FirmClient

pytestmark = pytest.mark.django_db
PAGE = "/accounts/security/"  # any page that needs a signed-in user


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


# --- passwords ------------------------------------------------------------------------------------
def test_password_of_64_and_128_characters_is_accepted():
    validate_password("Xq7!" * 16)  # 64
    validate_password("Zr9#" * 32)  # 128


def test_password_longer_than_128_is_refused_with_a_clear_message():
    with pytest.raises(ValidationError) as exc:
        validate_password("Zr9#" * 32 + "a")
    assert "at most 128" in " ".join(exc.value.messages)


@pytest.mark.parametrize("password", ["short1!", "password123", "12345678901"])
def test_short_common_and_numeric_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_passwords_are_hashed_with_argon2(owner):
    assert owner.password.startswith("argon2")


def test_production_hashes_passwords_with_argon2id_at_djangos_cost(settings):
    """The suite hashes at the lowest Argon2 cost (tests/hashers.py); production's settings keep
    Django's Argon2 hasher at its own cost, and its hashes verify."""
    from django.contrib.auth.hashers import check_password, make_password

    from tests.conftest import PRODUCTION_PASSWORD_HASHERS

    assert PRODUCTION_PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = PRODUCTION_PASSWORD_HASHERS
    hashed = make_password("Sturdy-pass-123")
    assert hashed.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    assert check_password("Sturdy-pass-123", hashed)
    assert not check_password("Sturdy-pass-124", hashed)


# --- sign-in -------------------------------------------------------------------------------------------
def _login(client, email, password, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


def test_sign_in_rotates_the_session_key_and_is_audited(firm, owner):
    client = FirmClient(firm)
    client.get("/accounts/login/")
    before = client.cookies.get("sessionid")
    client.session.save()
    anonymous_key = client.session.session_key
    response = _login(client, "owner@acme.test", PASSWORD)
    assert response.status_code == 302
    assert client.cookies["sessionid"].value != anonymous_key
    assert before is None or client.cookies["sessionid"].value != before.value
    assert AuditEvent.objects.filter(action="auth.login", actor="owner@acme.test", tenant_slug="acme").exists()


def test_failed_sign_in_is_audited_with_ip(firm, owner):
    _login(FirmClient(firm), "owner@acme.test", "wrong-password", REMOTE_ADDR="203.0.113.9")
    event = AuditEvent.objects.get(action="auth.login_failed", actor="owner@acme.test")
    assert event.ip == "203.0.113.9" and event.tenant_slug == "acme"


def test_account_is_slowed_down_after_five_failures_even_with_the_right_password(firm, owner):
    client = FirmClient(firm)
    for _ in range(5):
        assert _login(client, "owner@acme.test", "wrong-password").status_code == 200
    response = _login(client, "owner@acme.test", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_account_throttle_does_not_last_longer_than_the_cap(firm, owner, settings):
    now = time.time()
    for _ in range(40):
        ratelimit.login_failed(firm="firm_acme", email="owner@acme.test", ip="198.51.100.1", now=now)
    wait = ratelimit.login_wait(firm="firm_acme", email="owner@acme.test", ip="198.51.100.2", now=now)
    assert 0 < wait <= settings.CODEX_LOGIN_MAX_DELAY_SECONDS
    later = now + settings.CODEX_LOGIN_MAX_DELAY_SECONDS + 1
    assert ratelimit.login_wait(firm="firm_acme", email="owner@acme.test", ip="198.51.100.2", now=later) == 0


def test_delay_grows_exponentially_from_the_threshold(settings):
    settings.CODEX_LOGIN_ACCOUNT_FAILURES = 5
    assert [ratelimit._delay_for(n, 5) for n in (4, 5, 6, 7)] == [0, 30, 60, 120]


def test_one_ip_spraying_many_accounts_is_slowed_down(firm, settings):
    settings.CODEX_LOGIN_IP_FAILURES = 3
    client = FirmClient(firm)
    for i in range(3):
        _login(client, f"nobody{i}@acme.test", "x-wrong-1", REMOTE_ADDR="192.0.2.50")
    response = _login(client, "owner@acme.test", PASSWORD, REMOTE_ADDR="192.0.2.50")
    assert "Too many failed sign-ins" in response.content.decode()
    # another address still signs in: the real user is not locked out by the attacker's IP
    assert _login(FirmClient(firm), "owner@acme.test", PASSWORD, REMOTE_ADDR="192.0.2.51").status_code == 302


def test_success_clears_the_account_counter(firm, owner):
    client = FirmClient(firm)
    for _ in range(4):
        _login(client, "owner@acme.test", "wrong-password")
    assert _login(client, "owner@acme.test", PASSWORD).status_code == 302
    assert ratelimit.login_wait(firm="firm_acme", email="owner@acme.test", ip="127.0.0.1") == 0
    assert cache.get(ratelimit._account_key("firm_acme", "owner@acme.test")) is None


def test_throttle_of_one_firm_does_not_touch_the_same_email_at_another(firm, other_firm):
    for _ in range(6):
        ratelimit.login_failed(firm="firm_acme", email="same@x.test", ip="10.0.0.1")
    assert ratelimit.login_wait(firm="firm_acme", email="same@x.test", ip="10.0.0.2") > 0
    assert ratelimit.login_wait(firm="firm_globex", email="same@x.test", ip="10.0.0.2") == 0


def test_token_endpoint_answers_429_with_retry_after_when_throttled(firm, owner):
    client = FirmClient(firm)
    for _ in range(5):
        ratelimit.login_failed(firm="firm_acme", email="owner@acme.test", ip="127.0.0.1")
    response = client.post(
        "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"


# --- sessions ----------------------------------------------------------------------------------------
def test_idle_session_ends_after_30_minutes(firm, owner_client, time_machine_now):
    assert owner_client.get(PAGE).status_code == 200
    time_machine_now.shift(31 * 60)
    response = owner_client.get(PAGE)
    assert response.status_code == 302 and "expired=1" in response["Location"]
    assert owner_client.get(PAGE).status_code == 302  # still signed out


def test_activity_keeps_the_session_alive_until_the_absolute_limit(firm, owner_client, time_machine_now):
    for _ in range(25):  # 25 x 29 min = 12 h 5 min
        time_machine_now.shift(29 * 60)
        response = owner_client.get(PAGE)
        if response.status_code != 200:
            break
    assert response.status_code == 302
    elapsed_hours = (time_machine_now.time() - time_machine_now.start) / 3600
    assert 11.5 < elapsed_hours <= 12.5


def test_session_cookie_flags(settings):
    assert settings.SESSION_COOKIE_HTTPONLY and settings.CSRF_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert not getattr(settings, "SESSION_COOKIE_DOMAIN", None)


def test_sign_out_everywhere_ends_other_sessions_and_tokens(firm, owner, client_for):
    phone = client_for(owner)
    laptop = client_for(owner)
    token = FirmClient(firm).post(
        "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
    )
    access = token.json()["access"]
    page = laptop.get("/accounts/security/")
    assert "Sign out everywhere" in page.content.decode()
    assert laptop.post("/accounts/security/sign-out-everywhere/").status_code == 302
    assert phone.get(PAGE).status_code == 302
    assert FirmClient(firm).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401
    assert AuditEvent.objects.filter(action="auth.signed_out_everywhere", actor="owner@acme.test").exists()


def test_bearer_tokens_are_revoked_by_the_revoke_endpoint(firm, owner):
    client = FirmClient(firm)
    access = client.post(
        "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
    ).json()["access"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {access}"}
    assert client.get("/api/v1/me/", **auth).status_code == 200
    assert client.post("/api/v1/auth/token/revoke/", **auth).json() == {"revoked": True}
    assert client.get("/api/v1/me/", **auth).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoked", actor="owner@acme.test").exists()


def test_bearer_tokens_are_short_lived(settings):
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() <= 15 * 60
