"""Hardening: headers and CSP on our pages, CSRF on every state change, secrets never stored in
clear, schema names never reach SQL unvalidated, upload checks, rate limits on credential pages."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from codex.uploads import validate_upload
from tenants.services import slug_validate
from tests.conftest import PASSWORD, FirmClient
from tests.security.urlwalk import routes
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def assert_hardened_html(response) -> None:
    """Security headers present; no inline style or un-nonced script that the CSP would block."""
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert "camera=()" in response.headers.get("Permissions-Policy", "")
    if "text/html" in response.headers.get("Content-Type", ""):
        body = response.content.decode()
        assert "<style" not in body, "inline <style> is blocked by the CSP"
        assert not re.search(r"\sstyle\s*=", body), "style attributes are blocked by the CSP"
        assert not re.search(r"\son[a-z]+\s*=\s*[\"']", body), "inline event handlers are blocked by the CSP"
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "nonce=" in tag, f"script without nonce: {tag}"


def test_public_pages_are_hardened(public_client):
    for path in ("/", "/signup/", "/admin/login/"):
        response = public_client.get(path)
        assert response.status_code == 200, path
        assert_hardened_html(response)


def test_firm_pages_of_the_security_area_are_hardened(owner_client, anon_client):
    for path in ("/accounts/security/", "/accounts/audit/", "/accounts/security/2fa/setup/"):
        response = owner_client.get(path)
        assert response.status_code == 200, path
        assert_hardened_html(response)
    assert_hardened_html(anon_client.get("/accounts/login/"))


def test_api_docs_page_passes_the_csp(anon_client):
    response = anon_client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert_hardened_html(response)


def test_hsts_and_secure_cookies_in_production():
    import subprocess
    import sys

    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_NAME, s.SECURE_SSL_REDIRECT)"
    )
    env = {
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "CODEX_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": "postgres://u:p@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # required in production; nothing connects here
        "DJANGO_SETTINGS_MODULE": "codex.settings",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["31536000", "True", "True", "True", "__Host-sessionid", "True"]


# --- CSRF --------------------------------------------------------------------------------------------------
# POSTs that legitimately carry no CSRF token: they take no cookie-based credentials.
CSRF_EXEMPT = {
    "api/v1/auth/token/",  # credentials in the body, no session
    "api/v1/billing/webhooks/stripe/",  # signed by the payment provider
    "billing/webhooks/stripe/",
    "crm/newsletter/unsubscribe/<str:token>/",  # RFC 8058 one-click unsubscribe: the signed token is the credential
}
# 405: a read-only endpoint refused the method before doing anything (the API schema and docs).


def _post_routes(urlconf):
    for route in routes(urlconf):
        if route.pattern in CSRF_EXEMPT or route.pattern in ("health", "ready", "metrics", "api/v1/^.*$"):
            continue
        yield route


def test_every_firm_post_without_csrf_token_is_refused(firm, owner):
    client = FirmClient(firm, enforce_csrf_checks=True)
    client.force_login(owner)
    connection.set_tenant(firm)
    allowed = []
    for route in _post_routes("codex.site.urls_tenant"):
        response = client.post(route.path(), {"x": "1"})
        if response.status_code not in (403, 405):
            allowed.append((route.pattern, response.status_code))
    assert allowed == [], allowed


def test_every_public_post_without_csrf_token_is_refused(db):
    client = Client(HTTP_HOST=settings.CODEX_BASE_DOMAIN, enforce_csrf_checks=True)
    allowed = []
    for route in _post_routes("codex.site.urls_public"):
        if route.pattern.startswith("admin/"):
            continue  # Django's admin: csrf_protect on every view, covered by Django's own tests
        response = client.post(route.path(), {"x": "1"})
        if response.status_code != 403:
            allowed.append((route.pattern, response.status_code))
    assert allowed == [], allowed


def test_admin_login_needs_csrf():
    client = Client(HTTP_HOST=settings.CODEX_BASE_DOMAIN, enforce_csrf_checks=True)
    assert client.post("/admin/login/", {"username": "a", "password": "b"}).status_code == 403


# --- secrets at rest ---------------------------------------------------------------------------------------
def _text_columns(schema: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND data_type IN ('character varying', 'text', 'jsonb', 'json', 'character') ",
            [schema],
        )
        return cursor.fetchall()


def _tables_containing(schema: str, needles: list[str]) -> list[str]:
    by_table: dict[str, list[str]] = {}
    for table, column in _text_columns(schema):
        by_table.setdefault(table, []).append(column)
    found = []
    qn = connection.ops.quote_name
    patterns = [f"%{n}%" for n in needles]
    with connection.cursor() as cursor:
        for table, columns in by_table.items():
            concat = " || '|' || ".join(f"coalesce({qn(c)}::text, '')" for c in columns)
            cursor.execute(
                f"SELECT count(*) FROM {qn(schema)}.{qn(table)} WHERE ({concat}) LIKE ANY(%s)",  # noqa: S608
                [patterns],
            )
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_no_plaintext_key_token_totp_webhook_secret_or_recovery_code_is_stored(firm, owner, owner_client, api_key_for):
    from tenants.accounts import twofactor

    raw_key = api_key_for(firm, "write")
    created = owner_client.post("/api/v1/api-keys/", {"name": "scan"}, content_type="application/json").json()["key"]
    token = (
        FirmClient(firm)
        .post(
            "/api/v1/auth/token/", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
        )
        .json()["access"]
    )
    codes = twofactor.recovery_codes_regenerate(user=owner)
    # TOTP secrets (read back to verify codes: sealed), in hex and as the app shows it (base32)
    totp_key = twofactor.totp_enrolment_start(user=owner).key
    totp_b32 = twofactor.totp_manual_key(twofactor.totp_pending_device(user=owner)).replace(" ", "")
    # a response that carried a secret, kept for Idempotency-Key replays (sealed)
    replayable = owner_client.post(
        "/api/v1/api-keys/", {"name": "replay"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="scan-1"
    ).json()["key"]
    # webhook signing secrets (read back to sign: sealed), the current one and the one a rotation keeps
    from webhooks import services as webhook_services

    endpoint = owner_client.post(
        "/api/v1/webhook-endpoints/",
        {"url": "http://127.0.0.1:9/hooks", "event_types": ["contact.created"]},
        content_type="application/json",
    ).json()
    rotated = webhook_services.endpoint_rotate_secret(endpoint=WebhookEndpoint.objects.get(pk=endpoint["id"]))
    webhook_secrets = [endpoint["secret"], rotated.secret]
    assert rotated.previous_secret == endpoint["secret"]
    # the secret parts: the key's secret after its public prefix, the token's signature, each code
    needles = [raw_key.split("_", 2)[2], created.split("_", 2)[2], token.split(".")[2], replayable.split("_", 2)[2]]
    needles += [c.replace("-", "") for c in codes] + codes + [PASSWORD, totp_key, totp_b32]
    needles += [s.removeprefix("whsec_") for s in webhook_secrets]
    with schema_context("public"):
        public = _tables_containing("public", needles)
    firm_tables = _tables_containing(firm.schema_name, needles)
    assert public == [] and firm_tables == []
    # and the scan does find a planted secret (it can fail)
    from tenants.services import audit_record

    audit_record(action="x.test", actor="a", details={"oops": needles[0]})
    with schema_context("public"):
        assert _tables_containing("public", needles) == ["tenants_auditevent"]


# --- schema names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", ['acme"; drop schema public cascade; --', "a b", "pg_x", "x" * 60, "ab_c"])
def test_slugs_that_could_reach_sql_are_refused(slug):
    with pytest.raises(ValidationError):
        slug_validate(slug)


def test_tenant_user_counts_quotes_schema_names(firm, other_firm):
    from tenants.models import Tenant
    from tenants.selectors import tenant_user_counts

    evil = Tenant(pk=999_999, schema_name='x" ; select 1; --', name="x", slug="x")
    from django.db import ProgrammingError, transaction

    with pytest.raises(ProgrammingError), transaction.atomic():
        tenant_user_counts(tenants=[evil])  # an identifier that does not exist, never executed SQL
    assert tenant_user_counts(tenants=[firm])[firm.pk] >= 1


# --- uploads -------------------------------------------------------------------------------------------------
def test_upload_validator_checks_extension_type_size_and_content(settings):
    validate_upload(SimpleUploadedFile("a.csv", b"a,b\n1,2\n", "text/csv"))
    bad = [
        SimpleUploadedFile("a.exe", b"MZ", "application/octet-stream"),
        SimpleUploadedFile("a.csv", b"a,b\n", "image/png"),
        SimpleUploadedFile("a.csv", b"PK\x03\x04\x00\x00", "text/csv"),
        SimpleUploadedFile("a.csv", b"", "text/csv"),
        SimpleUploadedFile("a.pdf", b"not a pdf", "application/pdf"),
    ]
    for upload in bad:
        with pytest.raises(ValidationError):
            validate_upload(upload, kind="pdf" if upload.name.endswith(".pdf") else "csv")
    settings.CODEX_UPLOAD_MAX_BYTES = 10
    with pytest.raises(ValidationError, match="at most"):
        validate_upload(SimpleUploadedFile("a.csv", b"a" * 11, "text/csv"))


def test_request_body_size_is_capped():
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024


# --- rate limits on credential pages ----------------------------------------------------------------------
def test_signup_attempts_are_rate_limited_per_ip(public_client, settings):
    # Refused submissions do not count toward the sign-ups allowed per IP (issue 25), but a flood of
    # submissions meets the looser attempt limit (successful sign-ups: tests/tenants/test_signup_flow.py).
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "signup": "1/h", "signup_attempt": "3/h"}
    for _ in range(3):
        assert public_client.post("/signup/", {"name": ""}).status_code == 200
    response = public_client.post("/signup/", {"name": ""})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert public_client.get("/signup/").status_code == 200  # showing the form is free


def test_password_reset_is_rate_limited(anon_client, settings):
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "password_reset": "2/h"}
    for _ in range(2):
        assert anon_client.post("/accounts/password/reset/", {"email": "owner@acme.test"}).status_code == 302
    response = anon_client.post("/accounts/password/reset/", {"email": "owner@acme.test"})
    assert response.status_code == 429 and "Retry-After" in response


def test_invitations_are_rate_limited(owner_client, settings):
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "invitation": "1/h"}
    owner_client.post("/accounts/team/", {"email": "a1@acme.test", "role": "viewer"})
    response = owner_client.post("/accounts/team/", {"email": "a2@acme.test", "role": "viewer"})
    assert response.status_code == 429


def test_login_page_is_rate_limited(anon_client, settings):
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "login": "2/min"}
    for _ in range(2):
        anon_client.post("/accounts/login/", {"username": "x@y.test", "password": "nope-nope-1"})
    assert anon_client.post("/accounts/login/", {"username": "x@y.test", "password": "n"}).status_code == 429


def test_api_rate_scales_with_the_plan(firm, settings):
    from codex.api import throttles

    throttles._PLAN_MEMO.clear()
    settings.CODEX_PLAN_RATE_MULTIPLIERS = {"pro": 3.0, "starter": 1.0}
    assert throttles.plan_code_of(firm) == "pro"
    assert throttles.plan_multiplier(firm) == 3.0
    throttles._PLAN_MEMO.clear()


def test_client_ip_trusts_only_the_configured_proxies(rf, settings):
    from codex.security.net import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.CODEX_TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"  # a client-written header is ignored
    settings.CODEX_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # what our one proxy saw, not the spoofed left part


def test_security_txt_says_where_to_report(public_client):
    response = public_client.get("/.well-known/security.txt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Contact: mailto:security@localhost" in body and "Expires: " in body
