"""Every main page at 1440x900 and 390x844, light and dark: a screenshot in test-artifacts/ and axe-core
at no serious or critical violation (issue #25 point 9).

The pages are listed once, in ``PAGES``: the firm's staff pages as its owner, the public site, the
client portal as a client and the operators' console as an operator. One live server per module on a
private copy of the test database, seeded once (the demo firm's clients, portfolios, CRM, billing; a
portal client; an operator with a TOTP device); each person signs in once and the four views
(size x theme) reuse that session. A failure lists page, view, rule and nodes.

Screenshots: ``test-artifacts/gallery/<page>-<desktop|phone>-<light|dark>.png`` (full page).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connections
from django_otp.oath import totp

from .live import (
    ARTIFACTS,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    LiveServer,
    clone_database,
    drop_database,
    run_database_name,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

GALLERY = ARTIFACTS / "gallery"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
THEMES = ("light", "dark")
VIEWS = [(size, theme) for size in SIZES for theme in THEMES]
FIRM = "acme"  # a firm of tests/conftest.py, present in the copied database
OWNER_EMAIL, OWNER_PASSWORD = "owner@acme.test", "correct-horse-battery-9"  # tests/conftest.py's
CLIENT_EMAIL, CLIENT_PASSWORD = "gallery-client@acme.example", "Gallery-client-2026!"
OPERATOR_EMAIL, OPERATOR_PASSWORD = "operator@codex.local", "codex-demo-2026"  # seed_demo's
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # "public" (nobody signed in, base host), "owner", "client" (firm host), "operator" (base host)
    path: str  # may name seeded ids: {contact}, {portfolio}, {company}, {deal}, {tenant}
    ready: str = "main h1"  # what must be visible before the page is judged (the portal renders by JS)


PAGES = [
    # the public site
    Page("public-landing", "public", "/"),
    Page("public-pricing", "public", "/pricing/"),
    Page("public-status", "public", "/status/"),
    Page("public-find-firm", "public", "/find-your-firm/"),
    Page("public-signup", "public", "/signup/"),
    Page("firm-login", "public", "@firm/accounts/login/"),
    # the firm's staff, as the owner
    Page("dashboard", "owner", "/"),
    Page("clients", "owner", "/crm/contacts/"),
    Page("client-record", "owner", "/crm/contacts/{contact}/"),
    Page("client-activities", "owner", "/crm/contacts/{contact}/?timeline=activities"),
    Page("contact-new", "owner", "/crm/contacts/new/"),
    Page("companies", "owner", "/crm/companies/"),
    Page("company", "owner", "/crm/companies/{company}/"),
    Page("deals", "owner", "/crm/deals/"),
    Page("deal", "owner", "/crm/deals/{deal}/"),
    Page("pipeline", "owner", "/crm/pipeline/"),
    Page("tasks", "owner", "/crm/tasks/"),
    Page("newsletter", "owner", "/crm/newsletter/"),
    Page("search", "owner", "/crm/search/?q=Lovelace"),
    Page("crm-import", "owner", "/crm/import/"),
    Page("portfolios", "owner", "/portfolios/"),
    Page("portfolio", "owner", "/portfolios/{portfolio}/"),
    Page("transaction-new", "owner", "/portfolios/{portfolio}/transactions/new/"),
    Page("portfolio-import", "owner", "/portfolios/{portfolio}/import/"),
    Page("portfolio-history", "owner", "/portfolios/{portfolio}/history/"),
    Page("exposure", "owner", "/portfolios/exposure/"),
    Page("instruments", "owner", "/portfolios/instruments/"),
    Page("alerts", "owner", "/portfolios/alerts/"),
    Page("notifications", "owner", "/notifications/"),
    Page("fees", "owner", "/fees/"),
    Page("fee-runs", "owner", "/fees/runs/"),
    Page("fee-revenue", "owner", "/fees/revenue/"),
    Page("fee-schedule-new", "owner", "/fees/schedules/new/"),
    Page("reports", "owner", "/client-portal/reports/"),
    Page("client-portal-page", "owner", "/client-portal/clients/{contact}/"),
    Page("billing", "owner", "/billing/"),
    Page("billing-change", "owner", "/billing/change/?plan=starter&interval=year"),
    Page("settings", "owner", "/settings/"),
    Page("profile", "owner", "/accounts/profile/"),
    Page("team", "owner", "/accounts/team/"),
    Page("api-keys", "owner", "/accounts/api-keys/"),
    Page("security", "owner", "/accounts/security/"),
    Page("audit-log", "owner", "/accounts/audit/"),
    Page("webhooks", "owner", "/settings/webhooks/"),
    # the client portal (the static frontend), as the client
    Page("portal-overview", "client", "/portal/", ready="main h1"),
    Page("portal-portfolio", "client", "/portal/portfolios/{portfolio}", ready="[data-testid=portfolio-value]"),
    Page("portal-transactions", "client", "/portal/portfolios/{portfolio}/transactions", ready="main table"),
    Page("portal-documents", "client", "/portal/documents", ready="main h1"),
    Page("portal-advisor", "client", "/portal/advisor", ready="main h1"),
    # the operators' console
    Page("console-home", "operator", "/admin/", ready="#content"),
    Page("console-firms", "operator", "/admin/tenants/tenant/", ready="#content"),
    Page("console-firm", "operator", "/admin/tenants/tenant/{tenant}/change/", ready="#content"),
    Page("console-revenue", "operator", "/admin/billing/invoice/revenue/", ready="#content"),
    Page("console-status", "operator", "/admin/platform_status/servicecheck/", ready="#content"),
]

# Run in the copied database by ``manage.py shell``: the demo data (idempotent), a portal client
# bound to the first portfolio's client through the portal's own invitation services, and a
# confirmed TOTP device for the operator. Prints the ids the page list names.
SEED = f"""
import json
from django.conf import settings
from django.core.management import call_command
from django_tenants.utils import schema_context
from crm.models import Company, Deal
from portal import services as portal_services
from portfolios.models import Portfolio
from tenants.accounts import services as account_services
from tenants.accounts.models import Role, SealedTOTPDevice, User
from tenants.models import Tenant

call_command("seed_demo", verbosity=0)
with schema_context(settings.PUBLIC_SCHEMA_NAME):
    operator = User.objects.get(email={OPERATOR_EMAIL!r})
    device = SealedTOTPDevice.objects.create(user=operator, name="gallery", confirmed=True)
    tenant = Tenant.objects.get(slug={FIRM!r})
with schema_context(tenant.schema_name):
    owner = User.objects.get(email={OWNER_EMAIL!r})
    portfolio = Portfolio.objects.select_related("client").order_by("pk").first()
    invitation = portal_services.client_invite(
        actor=owner, contact=portfolio.client, tenant=tenant, email={CLIENT_EMAIL!r}
    )
    portal_services.client_invitation_accept(
        token=account_services.invitation_token(invitation), password={CLIENT_PASSWORD!r}, tenant=tenant
    )
    ids = {{
        "tenant": tenant.pk,
        "contact": portfolio.client_id,
        "portfolio": portfolio.pk,
        "company": Company.objects.order_by("pk").values_list("pk", flat=True).first(),
        "deal": Deal.objects.order_by("pk").values_list("pk", flat=True).first(),
    }}
    print("GALLERY" + json.dumps({{"ids": ids, "totp_key": device.key}}))
"""


# --- Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup):
    source = run_database_name()
    database = f"{source}_gallery"
    for alias in connections:
        connections[alias].close()
    clone_database(source, database)
    live = LiveServer(database=database, cors_origins=[])
    yield live
    live.stop()
    drop_database(database)


@pytest.fixture(scope="module")
def seeded(server) -> dict:
    output = server.manage("shell", "-c", SEED)
    line = next(line for line in output.splitlines() if line.startswith("GALLERY"))
    return json.loads(line.removeprefix("GALLERY"))


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (`make test` does it as root)")
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing: run `npm ci` (make install does it)")
    # Playwright's sync API keeps an event loop in this thread (see test_browser.py's fixture).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield b
            b.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _sign_in(browser, server, seeded, who: str) -> dict | None:
    """Sign ``who`` in once; returns the session's storage state (None for the public)."""
    if who == "public":
        return None
    context = browser.new_context()
    context.set_default_timeout(20_000)
    page = context.new_page()
    if who in ("owner", "client"):
        email, password = (OWNER_EMAIL, OWNER_PASSWORD) if who == "owner" else (CLIENT_EMAIL, CLIENT_PASSWORD)
        page.goto(server.firm_url(FIRM, "/accounts/login/"))
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(rf"http://{FIRM}\.localhost:\d+/(portal/)?$"))
    else:
        page.goto(server.url(path="/admin/login/"))
        page.locator("#id_username").fill(OPERATOR_EMAIL)
        page.locator("#id_password").fill(OPERATOR_PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/accounts/security/2fa/verify/"))
        key = bytes.fromhex(seeded["totp_key"])
        page.get_by_label(re.compile("code", re.I)).first.fill(f"{totp(key):06d}")
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/admin/$"))
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def views(browser, server, seeded):
    """``views(who, size, theme)``: a signed-in page at that size with that theme, made once and reused.

    The theme is both the cookie the theme switch sets (the firm's pages and the portal) and the
    browser's colour scheme (the console follows the system, like Django's admin does by default).
    """
    states: dict[str, dict | None] = {}
    pages: dict[tuple[str, str, str], object] = {}
    contexts = []

    def get(who: str, size: str, theme: str):
        key = (who, size, theme)
        if key not in pages:
            if who not in states:
                states[who] = _sign_in(browser, server, seeded, who)
            context = browser.new_context(
                viewport=SIZES[size], color_scheme=theme, storage_state=states[who], reduced_motion="reduce"
            )
            context.set_default_timeout(20_000)
            context.add_cookies(
                [
                    {"name": "codex_theme", "value": theme, "url": server.url(host)}
                    for host in ("localhost", f"{FIRM}.localhost")
                ]
            )
            contexts.append(context)
            pages[key] = context.new_page()
        return pages[key]

    yield get
    for context in contexts:
        context.close()


# --- The gallery ------------------------------------------------------------------------------------


def _url(server, page: Page, ids: dict) -> str:
    path = page.path.format(**ids)
    if path.startswith("@firm"):
        return server.firm_url(FIRM, path.removeprefix("@firm"))
    host = "localhost" if page.who in ("public", "operator") else f"{FIRM}.localhost"
    return server.url(host, path)


def _axe(pg) -> list[dict]:
    # Evaluated rather than added as a <script> tag: the page's CSP (rightly) refuses inline scripts.
    if not pg.evaluate("typeof window.axe !== 'undefined'"):
        pg.evaluate(AXE.read_text())
    result = pg.evaluate("async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    return result["violations"]


def _describe(violation: dict) -> str:
    nodes = "; ".join(
        f"{' '.join(node['target'])} ({node.get('failureSummary', '').splitlines()[-1].strip()})"
        for node in violation["nodes"][:6]
    )
    more = f" and {len(violation['nodes']) - 6} more" if len(violation["nodes"]) > 6 else ""
    return f"{violation['id']} [{violation['impact']}] {violation['help']}: {nodes}{more}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_at_both_sizes_in_light_and_dark_has_no_serious_accessibility_violation(page, views, server, seeded):
    if page.who == "client" and not (ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.fail("the client portal is not built: run `make frontend` (`make test` does it)")
    GALLERY.mkdir(parents=True, exist_ok=True)
    url = _url(server, page, seeded["ids"])
    problems = []
    for size, theme in VIEWS:
        pg = views(page.who, size, theme)
        response = pg.goto(url)
        assert response is not None and response.status == 200, f"{page.name}: {url} answered {response.status}"
        pg.locator(page.ready).first.wait_for(state="visible")
        if page.who != "operator":  # the console follows the colour scheme (Django's admin: "auto")
            assert pg.evaluate("document.documentElement.dataset.theme") == theme, f"{page.name}: theme not applied"
        view = f"{size}-{theme}"
        pg.screenshot(path=str(GALLERY / f"{page.name}-{view}.png"), full_page=True)
        violations = _axe(pg)
        (GALLERY / f"axe-{page.name}-{view}.json").write_text(json.dumps(violations, indent=1))
        problems += [
            f"{page.name} {view}: {_describe(v)}" for v in violations if v["impact"] in ("serious", "critical")
        ]
    assert not problems, "\n".join(problems)
