"""The web UI's own pages: layout and navigation, settings, theme, brand colour, error pages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from tenants.models import AuditEvent, Tenant

pytestmark = pytest.mark.django_db

NAV = ["Dashboard", "Clients", "Portfolios", "Pipeline", "Tasks", "Newsletter", "Billing", "Team", "Settings"]


def test_layout_has_navigation_user_role_and_search(owner_client):
    html = owner_client.get("/settings/").content.decode()
    for label in NAV:
        assert f">{label}</a>" in html, label
    assert 'href="/settings/" aria-current="page"' in html
    assert 'action="/crm/search/"' in html and 'name="q"' in html
    assert '<label for="global-search"' in html
    assert "owner@acme.test" in html and ">Owner<" in html


def test_team_link_only_for_managers(advisor_client):
    html = advisor_client.get("/settings/").content.decode()
    assert ">Team</a>" not in html
    assert ">Settings</a>" in html


def test_owner_changes_firm_settings_and_brand_colour_reaches_the_header(owner_client, firm):
    response = owner_client.post(
        "/settings/", {"name": "Acme Wealth", "brand_color": "#0E7C66", "require_2fa": ""}, follow=True
    )
    assert response.status_code == 200
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        row = Tenant.objects.get(pk=firm.pk)
        assert (row.name, row.brand_color, row.require_2fa) == ("Acme Wealth", "#0e7c66", False)
        assert AuditEvent.objects.filter(action="tenant.settings_changed", tenant=row).exists()
    html = owner_client.get("/settings/").content.decode()
    assert "Acme Wealth" in html
    assert '/brand.css?v=0e7c66"' in html
    css = owner_client.get("/brand.css?v=0e7c66")
    assert css["Content-Type"].startswith("text/css")
    assert b"--brand: #0e7c66; --brand-fg: #ffffff;" in css.content
    assert "max-age" in css["Cache-Control"]


def test_bad_brand_colour_is_a_field_error_and_input_is_kept(owner_client, firm):
    response = owner_client.post("/settings/", {"name": "Acme Renamed", "brand_color": "blue"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Use a colour like #1d4ed8" in html
    assert 'value="Acme Renamed"' in html
    assert 'aria-invalid="true"' in html
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert Tenant.objects.get(pk=firm.pk).name == "Acme Wealth Partners"


def test_advisor_cannot_change_firm_settings(advisor_client, firm):
    assert advisor_client.post("/settings/", {"name": "Hijacked", "brand_color": ""}).status_code == 403
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert Tenant.objects.get(pk=firm.pk).name == "Acme Wealth Partners"


def test_brand_foreground_always_meets_aa_contrast():
    from tenants.firm_settings import brand_foreground, contrast_ratio

    for color in ("#000000", "#ffffff", "#777777", "#808080", "#1d4ed8", "#ffcc00", "#0e7c66", "#ff0000"):
        assert contrast_ratio(color, brand_foreground(color)) >= 4.5, color


def test_theme_switch_sets_cookie_without_javascript(owner_client):
    response = owner_client.post("/theme/", {"theme": "dark", "next": "/settings/"})
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert response.cookies["codex_theme"].value == "dark"
    html = owner_client.get("/settings/").content.decode()
    assert '<html lang="en" data-theme="dark">' in html
    back = owner_client.post("/theme/", {"theme": "", "next": "https://evil.example/"})
    assert back["Location"] == "/"
    assert back.cookies["codex_theme"].value == ""


def test_public_pages_have_site_navigation(public_client):
    html = public_client.get("/").content.decode()
    assert "What Codex does for your firm" in html
    for href in ('href="/pricing/"', 'href="/status/"', 'href="/find-your-firm/"', 'href="/signup/"'):
        assert href in html


def test_error_pages_render_in_layout(owner_client):
    response = owner_client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content and b"Dashboard" in response.content


def test_unknown_host_page_points_to_find_your_firm(db):
    from django.test import Client

    response = Client(HTTP_HOST="nobody.localhost").get("/")
    assert response.status_code == 404
    assert b"/find-your-firm/" in response.content


# --- the fee pages (issue 21): each renders for its owner with a pinned number of queries, and
# another firm's user gets a 404 for the same address --------------------------------------------


@pytest.fixture
def fee_objects(owner):
    import datetime as dt

    from django.utils import timezone

    from fees import services as fee_services
    from fees.models import FeeInvoice
    from tests.portfolios.factories import ContactFactory, PortfolioFactory

    schedule = fee_services.fee_schedule_create(
        name="Page schedule", effective_from=dt.date(2020, 1, 1), method="blended", tiers=[{"upto": None, "bps": "100"}]
    )
    product = fee_services.product_create(name="Page product", fee_schedule=schedule)
    contact = ContactFactory(owner=owner)
    portfolio = PortfolioFactory(advisor=owner, client=contact)
    group = fee_services.billing_group_create(name="Page household", client=contact, portfolios=[portfolio])
    # an account without a ledger exists from the day it was created
    sub = fee_services.subscription_create(group=group, product=product, starts_on=timezone.localdate())
    invoice = FeeInvoice.objects.create(
        number="PAGE-1",
        group=group,
        client=contact,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 3, 31),
        issued_on=dt.date(2026, 4, 1),
        due_on=dt.date(2026, 5, 1),
        currency="USD",
        total=10,
        collection="invoice",
    )
    return {"schedule": schedule.pk, "product": product.pk, "group": group.pk, "sub": sub.pk, "invoice": invoice.pk}


FEE_PAGES = {  # (object kind, queries: session, user, firm's plan, the page's own reads, layout)
    "/fees/products/new/": (None, 10),
    "/fees/products/{}/": ("product", 10),
    "/fees/schedules/new/": (None, 10),
    "/fees/schedules/{}/": ("schedule", 13),
    "/fees/groups/new/": (None, 11),
    "/fees/groups/{}/": ("group", 14),
    "/fees/subscriptions/new/": (None, 11),
    "/fees/subscriptions/{}/": ("sub", 10),
    "/fees/invoices/{}/void/": ("invoice", 10),
}


@pytest.mark.parametrize("pattern", list(FEE_PAGES))
def test_fee_pages_render_with_pinned_queries_and_are_404_to_another_firm(
    pattern, fee_objects, owner_client, outsider_client, django_assert_num_queries
):
    kind, pin = FEE_PAGES[pattern]
    path = pattern.format(fee_objects[kind]) if kind else pattern
    with django_assert_num_queries(pin):
        response = owner_client.get(path)
    assert response.status_code == 200, path
    if kind:
        assert outsider_client.get(path).status_code == 404, path
