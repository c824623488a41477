"""Sign-up that ends well (issue 25, point 6): every error at once with the input kept, only
successful sign-ups counted toward the per-IP limit, the plan chosen on the pricing page carried to
the trial, and the new owner signed in on their firm's host by a single-use, short-lived link."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from billing.models import Plan
from codex.security.ratelimit import hit, hit_refund
from tenants.accounts.handoff import signup_handoff_issue
from tenants.models import AuditEvent, Tenant

pytestmark = pytest.mark.django_db

GOOD = {"name": "Lovelace Partners", "owner_email": "Ada@Lovelace.test", "owner_password": "Sturdy-pass-123"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.clear()
    yield


@pytest.fixture
def plans():
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        boutique = Plan.objects.create(code="boutique", name="Boutique", price_month="77.00", sort_order=9)
        secret = Plan.objects.create(code="secret", name="Secret deal", price_month="1.00", is_public=False)
    return boutique, secret


def _signup(client, slug: str, **overrides):
    return client.post("/signup/", {**GOOD, "slug": slug, **overrides})


def _firm_client(slug: str) -> Client:
    return Client(HTTP_HOST=f"{slug}.{settings.CODEX_BASE_DOMAIN}")


def _path(location: str) -> str:
    return urlsplit(location).path


# --- every error at once, input kept ---------------------------------------------------------------
def test_signup_shows_every_field_error_at_once_and_keeps_what_was_typed(public_client, firm):
    # "acme" is taken and the password is weak: before, the address was checked only once the
    # other fields passed, so the errors came in stages.
    response = public_client.post(
        "/signup/", {"name": "", "slug": "acme", "owner_email": "not-an-email", "owner_password": "123"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html  # name
    assert "That address is already taken." in html
    assert "Enter a valid email address." in html
    assert "This password is too short" in html
    assert html.count('class="error" id="id_') == 4  # each next to its own field
    assert 'value="acme"' in html and 'value="not-an-email"' in html and 'value="123"' in html
    assert "Please correct the 4 fields marked below." in html


def test_signup_weak_password_and_reserved_address_show_together(public_client):
    response = _signup(public_client, "api", owner_password="password")
    html = response.content.decode()
    assert "reserved" in html and "This password is too common." in html
    assert not Tenant.objects.filter(slug="api").exists()


# --- rate limit: successes only --------------------------------------------------------------------
def test_failed_signups_do_not_count_toward_the_limit(public_client, settings):
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "signup": "1/h"}
    for _ in range(8):  # a person correcting typos, many times over
        assert _signup(public_client, "www").status_code == 200
    response = _signup(public_client, "typo-fixed")
    assert response.status_code == 302
    assert Tenant.objects.filter(slug="typo-fixed").exists()


def test_successful_signups_are_limited_per_ip(public_client, settings):
    settings.CODEX_FORM_RATES = {**settings.CODEX_FORM_RATES, "signup": "1/h"}
    assert _signup(public_client, "first-firm").status_code == 302
    response = _signup(public_client, "second-firm")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert not Tenant.objects.filter(slug="second-firm").exists()


def test_hit_refund_gives_back_one_request():
    rate = "1/h"
    assert hit(scope="t-refund", ident="ip", rate=rate, now=1000.0).allowed
    hit_refund(scope="t-refund", ident="ip", rate=rate, now=1000.0)
    assert hit(scope="t-refund", ident="ip", rate=rate, now=1000.0).allowed
    assert not hit(scope="t-refund", ident="ip", rate=rate, now=1000.0).allowed
    hit_refund(scope="t-refund-none", ident="ip", rate=rate, now=1000.0)  # nothing counted: no error


# --- the plan chosen on the pricing page ------------------------------------------------------------
def test_each_pricing_button_leads_to_its_own_plan(public_client, plans):
    html = public_client.get("/pricing/").content.decode()
    links = re.findall(r'href="/signup/\?plan=([a-z0-9-]+)"', html)
    public_codes = list(Plan.objects.filter(is_public=True).values_list("code", flat=True))
    assert sorted(links) == sorted(public_codes) and len(links) == len(set(links)) >= 2
    assert "secret" not in links
    assert "Start a free trial of Boutique" in html


def test_signup_page_preselects_the_plan_from_pricing(public_client, plans):
    html = public_client.get("/signup/?plan=boutique").content.decode()
    assert re.search(r'<option value="boutique" selected>', html)
    default = public_client.get("/signup/?plan=secret").content.decode()  # not on offer: the default
    assert re.search(rf'<option value="{settings.CODEX_SIGNUP_PLAN}" selected>', default)
    assert 'value="secret"' not in default


def test_signup_starts_a_trial_of_the_chosen_plan(public_client, plans):
    response = _signup(public_client, "boutique-firm", plan="boutique")
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="boutique-firm")
    assert tenant.subscription.plan.code == "boutique" and tenant.subscription.status == "trialing"
    assert tenant.status == "trialing"


def test_signup_refuses_a_plan_not_on_offer_and_writes_nothing(public_client, plans):
    response = _signup(public_client, "secret-firm", plan="secret")
    assert response.status_code == 200
    assert "Choose one of the plans on offer." in response.content.decode()
    assert not Tenant.objects.filter(slug="secret-firm").exists()


# --- signed in on the firm's host -------------------------------------------------------------------
def test_new_owner_lands_signed_in_on_their_firm_host(public_client):
    response = _signup(public_client, "landed")
    location = response["Location"]
    assert location.startswith("http://landed.localhost") and "/accounts/welcome/" in location
    firm_client = _firm_client("landed")
    welcome = firm_client.get(_path(location))
    assert welcome.status_code == 302 and welcome["Location"] == "/"
    home = firm_client.get("/")
    assert home.status_code == 200
    assert "Lovelace Partners" in home.content.decode()
    assert _firm_client("landed").get("/").status_code == 302  # the session is this browser's only
    tenant = Tenant.objects.get(slug="landed")
    actions = set(AuditEvent.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"auth.signup_handoff_issued", "auth.signup_handoff_redeemed", "auth.login"} <= actions


def test_signup_link_cannot_be_replayed(public_client):
    location = _signup(public_client, "replayed")["Location"]
    assert _firm_client("replayed").get(_path(location)).status_code == 302
    thief = _firm_client("replayed")
    again = thief.get(_path(location))
    assert again.status_code == 400 and "already been used" in again.content.decode()
    assert thief.get("/")["Location"].startswith("/accounts/login/")  # still sent to sign in


def test_signup_link_expires(public_client, settings):
    issued = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    with time_machine.travel(issued, tick=False):
        location = _signup(public_client, "expired")["Location"]
    with time_machine.travel(issued + timedelta(seconds=settings.CODEX_SIGNUP_HANDOFF_SECONDS + 1), tick=False):
        client = _firm_client("expired")
        response = client.get(_path(location))
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_signup_link_of_one_firm_does_not_open_another(firm, other_firm):
    token = signup_handoff_issue(tenant=firm, owner_email="owner@acme.test")
    client = _firm_client(other_firm.slug)
    response = client.get(f"/accounts/welcome/{token}/")
    assert response.status_code == 400 and "another firm" in response.content.decode()
    assert client.get("/")["Location"].startswith("/accounts/login/")
    # its owner's firm accepts it
    own = _firm_client(firm.slug)
    assert own.get(f"/accounts/welcome/{token}/").status_code == 302
    assert own.get("/").status_code == 200


def test_forged_signup_link_is_refused(firm):
    token = signup_handoff_issue(tenant=firm, owner_email="owner@acme.test")
    client = _firm_client(firm.slug)
    response = client.get(f"/accounts/welcome/{token[:-2]}xx/")
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert client.get("/")["Location"].startswith("/accounts/login/")
