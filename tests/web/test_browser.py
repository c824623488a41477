"""Browser journeys in Debian's Chromium through Playwright, against a real server process.

Run: ``pytest -m browser tests/web`` (part of the normal run too). Each journey signs up its own firm
(unique per run) so the committed data never touches the fixtures' firms. Screenshots of each main
page land in test-artifacts/ with the server's log.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socketserver
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect

from .live import (
    ARTIFACTS,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveServer,
    clone_database,
    drop_database,
    free_port,
    run_database_name,
)

# ``django_db`` makes pytest-django create the test database even when only browser tests are
# selected; the journeys themselves write only through the live server.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]


PASSWORD = "Browser-journey-2026!"
RUN = time.strftime("%H%M%S")

# Every journey runs at both sizes (issue 25 point 8): a desktop and a phone (iPhone 12-15 class).
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

# [scrollWidth, innerWidth, the outermost elements sticking out of the window when the page scrolls].
PAGE_WIDTH = """() => {
  const scroll = document.documentElement.scrollWidth, inner = window.innerWidth, wide = [];
  if (scroll > inner) {
    for (const el of document.body.querySelectorAll("*")) {
      const right = el.getBoundingClientRect().right;
      if (wide.length < 5 && right > inner && el.parentElement.getBoundingClientRect().right <= inner) {
        const names = typeof el.className === "string" ? el.className.trim().split(/\\s+/) : [];
        const cls = names.filter(Boolean).map((n) => "." + n).join("");
        wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls + " to " + Math.round(right) + " px");
      }
    }
  }
  return [scroll, inner, wide.join(", ")];
}"""
# Reports each loaded page's width to the test (an exposed binding): no page may scroll sideways.
PAGE_WIDTH_PROBE = f"""(() => {{
  const measure = {PAGE_WIDTH};
  const report = () => window.__codexPageWidth && window.__codexPageWidth(location.href, ...measure());
  addEventListener("load", () => {{ report(); setTimeout(report, 300); }});
}})();"""


# --- Fixtures ---------------------------------------------------------------------------------------


class _StaticSite:
    """A static frontend on another origin: serves one HTML page that calls the API with a key."""

    def __init__(self, root: Path):
        self.port = free_port()
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
        handler_cls = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
        self.httpd = socketserver.ThreadingTCPServer(
            ("127.0.0.1", self.port), lambda *a: handler_cls(*a, directory=str(root))
        )
        del handler
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def static_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontend")
    (root / "index.html").write_text(FRONTEND_HTML)
    site = _StaticSite(root)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def server(django_db_setup, static_site):
    # The live server runs on a private copy of this run's test database (firms, plans, template
    # schema), so what the journeys commit never reaches the database the other tests share; it
    # seeds the shared market data there itself (idempotent, deterministic).
    source = run_database_name()
    database = f"{source}_browser"
    for alias in connections:
        connections[alias].close()
    clone_database(source, database)
    live = LiveServer(database=database, cors_origins=[f"http://127.0.0.1:{static_site.port}"])
    yield live
    live.stop()
    drop_database(database)


@pytest.fixture(scope="module")
def browser(server):
    # After the server: once Playwright's event loop runs in this thread, Django's connections (kept
    # per context by asgiref) are other objects, and the fixtures' connection could not be closed.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (`make test` does it as root)")
    # Playwright's sync API keeps an event loop in this thread while the browser is open; Django's
    # guard against ORM calls from async code would then refuse the per-test fixtures' (synchronous,
    # sequential) database calls. Allowed for this module only.
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


@pytest.fixture(scope="module", params=list(VIEWPORTS), ids=list(VIEWPORTS))
def viewport(request) -> str:
    """The size every journey of this pass runs at; module-scoped, so pytest runs all the journeys at
    one size, then all at the other (each pass with a firm of its own, see ``firm_a``)."""
    return request.param


class WidthWatch:
    """Widths of every page a context loads (the probe reports on load), checked at the end."""

    def __init__(self, context):
        self.seen: list[tuple[str, int, int, str]] = []
        context.add_init_script(PAGE_WIDTH_PROBE)
        context.expose_binding(
            "__codexPageWidth",
            lambda _source, url, scroll, inner, wide: self.seen.append((url, scroll, inner, wide)),
        )

    def assert_no_page_scroll(self) -> None:
        assert self.seen, "no page of this journey reported its width"
        wide = sorted(
            {f"{url} ({scroll} px in {inner} px: {why})" for url, scroll, inner, why in self.seen if scroll > inner}
        )
        assert not wide, f"pages that scroll sideways: {wide}"


def new_context(browser, viewport: str, **options):
    """A browser context at the pass's size whose pages report their widths (``context.width_watch``)."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], **options)
    context.set_default_timeout(15_000)
    context.width_watch = WidthWatch(context) if options.get("java_script_enabled", True) else None
    return context


def close_checked(context, *pages) -> None:
    """Close ``context`` after checking that no page it loaded scrolled sideways."""
    for pg in pages:
        assert_no_page_scroll(pg)
    watch = context.width_watch
    context.close()
    if watch is not None:
        watch.assert_no_page_scroll()


def assert_no_page_scroll(page) -> None:
    """The page in front of us now (after its scripts ran) is no wider than the window."""
    page.wait_for_load_state("load")
    scroll, inner, wide = page.evaluate(PAGE_WIDTH)
    assert scroll <= inner, f"{page.url} scrolls sideways: {scroll} px in a {inner} px window ({wide})"


def is_phone(page) -> bool:
    return page.viewport_size["width"] < 600


def open_menu(page) -> None:
    """On a phone the account links, theme switch and main navigation sit behind Menu: open it."""
    if not is_phone(page):
        return
    menu = page.get_by_role("button", name="Menu")
    if menu.get_attribute("aria-expanded") != "true":
        menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")


@pytest.fixture
def page(browser, viewport):
    context = new_context(browser, viewport)
    pg = context.new_page()
    yield pg
    close_checked(context, pg)


def shot(page, name: str) -> None:
    assert_no_page_scroll(page)
    ARTIFACTS.mkdir(exist_ok=True)
    size = "phone-" if is_phone(page) else ""
    page.screenshot(path=str(ARTIFACTS / f"{size}{name}.png"), full_page=True)


def axe_check(page, name: str) -> list[dict]:
    """Run axe-core in the page; return serious/critical violations (and save them all as JSON)."""
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing: run `npm ci` (make install does it)")
    # Evaluated rather than added as a <script> tag: the page's CSP (rightly) refuses inline scripts.
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(result["violations"], indent=1))
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def sign_up(page, server, *, slug: str, name: str, email: str) -> None:
    page.goto(server.url(path="/signup/"))
    page.get_by_label("Firm name").fill(name)
    page.get_by_label("Address").fill(slug)
    page.get_by_label("Your e-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my firm").click()
    # signed in on the firm's host by the single-use link (no second sign-in)
    page.wait_for_url(re.compile(rf"http://{slug}\.localhost:\d+/$"))


def log_in(page, server, *, slug: str, email: str, password: str = PASSWORD) -> None:
    page.goto(server.firm_url(slug, "/accounts/login/"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.firm_url(slug, "/"))


@pytest.fixture(scope="module")
def firm_a(server, browser, viewport):
    """A firm signed up through the public site, with its owner signed in (storage state kept).

    One per size: the journeys build on each other (a plan change before the newsletter), and each
    pass starts from the same new firm, signed up at that size."""
    run = f"{RUN}-{viewport[0]}"
    slug, email = f"web-a-{run}", f"owner-{run}@web-a.example"
    context = new_context(browser, viewport)
    pg = context.new_page()
    sign_up(pg, server, slug=slug, name=f"Browser Firm A {run}", email=email)
    assert f"Browser Firm A {run} is ready" in pg.content()  # signed in already: no second sign-in
    state = context.storage_state()
    close_checked(context, pg)
    return {"slug": slug, "email": email, "state": state, "run": run}


@pytest.fixture
def owner_page(browser, firm_a, viewport):
    context = new_context(browser, viewport, storage_state=firm_a["state"])
    pg = context.new_page()
    yield pg
    close_checked(context, pg)


# --- Journeys ---------------------------------------------------------------------------------------


def test_public_site_landing_pricing_status_and_find_your_firm(page, server, firm_a):
    page.goto(server.url())
    expect(page.get_by_role("heading", name="Run your advisory firm from one place")).to_be_visible()
    shot(page, "public-landing")
    assert axe_check(page, "public-landing") == []

    open_menu(page)
    page.get_by_role("link", name="Pricing").first.click()
    page.wait_for_url(server.url(path="/pricing/"))
    expect(page.get_by_role("heading", name="Pro", exact=True)).to_be_visible()
    shot(page, "public-pricing")
    assert axe_check(page, "public-pricing") == []

    ready = page.request.get(server.url(path="/ready")).json()
    page.goto(server.url(path="/status/"))
    headline = "All systems operational" if ready["status"] == "ok" else "Service degraded"
    expect(page.get_by_role("heading", name=headline)).to_be_visible()
    for state in ready["checks"].values():
        expect(page.locator("table").get_by_text(state, exact=True).first).to_be_visible()
    shot(page, "public-status")

    mark = len(server.output())
    page.goto(server.url(path="/find-your-firm/"))
    page.get_by_label("Your work e-mail").fill(firm_a["email"])
    page.get_by_role("button", name="E-mail me my sign-in addresses").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    assert server.wait_for_email(
        to=firm_a["email"], pattern=rf"http://{firm_a['slug']}\.localhost:\d+/accounts/login/", after=mark
    )
    # An unknown address gets the very same answer.
    page.goto(server.url(path="/find-your-firm/"))
    page.get_by_label("Your work e-mail").fill(f"nobody-{RUN}@nowhere.example")
    page.get_by_role("button", name="E-mail me my sign-in addresses").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    assert axe_check(page, "public-find-firm") == []
    page.goto(server.url(path="/signup/"))
    shot(page, "public-signup")
    assert axe_check(page, "public-signup") == []
    page.goto(server.firm_url(firm_a["slug"], "/accounts/login/"))
    shot(page, "firm-login")
    assert axe_check(page, "firm-login") == []


def test_sign_up_log_in_and_onboarding_checklist(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"]))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    checklist = page.locator(".checklist")
    assert checklist.is_visible()
    assert "Invite a colleague" in checklist.inner_text()
    nav = page.get_by_role("navigation", name="Main")
    open_menu(page)
    for label in ("Dashboard", "Clients", "Portfolios", "Pipeline", "Tasks", "Newsletter", "Billing", "Team"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    shot(page, "dashboard-new-firm")
    assert axe_check(page, "dashboard") == []


def test_keyboard_navigation_reaches_skip_link_and_shows_focus(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/settings/"))
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_invite_a_colleague_who_accepts(owner_page, browser, server, firm_a, viewport):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/accounts/team/"))
    mark = len(server.output())
    invitee = f"advisor-{firm_a['run']}@web-a.example"
    invite = page.locator("#invite")
    invite.get_by_label("E-mail", exact=True).fill(invitee)
    invite.get_by_label("Role", exact=True).select_option("advisor")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation sent to {invitee}")).to_be_visible()
    shot(page, "team")
    assert axe_check(page, "team") == []
    link = server.wait_for_email(to=invitee, pattern=r"http://\S+/accounts/invitation/\S+/", after=mark).group(0)

    other = new_context(browser, viewport)
    guest = other.new_page()
    guest.goto(link)
    guest.get_by_label("First name").fill("Ada")
    guest.get_by_label("Password", exact=True).fill(PASSWORD)
    guest.get_by_label("Password again").fill(PASSWORD)
    guest.get_by_role("button", name="Join").click()
    guest.wait_for_url(server.firm_url(firm_a["slug"], "/"))
    open_menu(guest)
    expect(guest.get_by_text("Advisor", exact=True).first).to_be_visible()
    close_checked(other, guest)

    page.goto(server.firm_url(firm_a["slug"]))
    step = page.locator('[data-step="colleague"]')
    assert "done" in (step.get_attribute("class") or "")


def test_create_and_revoke_an_api_key(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/accounts/api-keys/"))
    page.get_by_label("Name").fill("Website")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("code.secret").inner_text()
    assert key.startswith("cdx_")
    shot(page, "api-keys")
    assert axe_check(page, "api-keys") == []
    row = page.get_by_role("row").filter(has_text="Website")
    # With JS, the browser's confirm asks first: dismissing it changes nothing.
    page.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name="Revoke").click()
    assert "Revoked" not in row.inner_text()  # dismissed: nothing happened
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator(".messages").inner_text()
    assert "Revoked" in page.get_by_role("row").filter(has_text="Website").inner_text()
    page.goto(server.firm_url(firm_a["slug"]))
    assert "done" in (page.locator('[data-step="api_key"]').get_attribute("class") or "")


def test_destructive_action_without_javascript_asks_on_a_confirmation_page(browser, server, firm_a, viewport):
    context = new_context(browser, viewport, java_script_enabled=False, storage_state=firm_a["state"])
    page = context.new_page()
    page.goto(server.firm_url(firm_a["slug"], "/accounts/api-keys/"))
    # Without scripting there is no Menu button: the navigation is simply there, at either size.
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients")).to_be_visible()
    assert_no_page_scroll(page)
    page.get_by_label("Name").fill("No-JS key")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("row").filter(has_text="No-JS key").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("heading", name=re.compile("Revoke the API key"))).to_be_visible()
    shot(page, "confirm-page")
    page.get_by_role("button", name="Revoke key").click()
    assert "Revoked" in page.get_by_role("row").filter(has_text="No-JS key").inner_text()
    close_checked(context, page)


def test_settings_brand_colour_and_dark_theme(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/settings/"))
    page.get_by_label("Brand colour").fill("#0e7c66")
    page.get_by_role("button", name="Save firm settings").click()
    expect(page.get_by_text("Firm settings saved.")).to_be_visible()
    page.wait_for_load_state("load")
    brand = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()")
    assert brand == "#0e7c66"
    open_menu(page)
    page.get_by_role("button", name="Dark").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"  # remembered (cookie)
    shot(page, "settings-dark")
    assert axe_check(page, "settings-dark") == []
    page.goto(server.firm_url(firm_a["slug"]))
    shot(page, "dashboard-dark")
    assert axe_check(page, "dashboard-dark") == []
    open_menu(page)
    page.get_by_role("button", name="Auto").click()


def test_navigation_folds_behind_menu_on_a_phone_and_one_search_box(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/crm/contacts/"))
    menu = page.get_by_role("button", name="Menu")
    clients = page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients")
    sign_out = page.get_by_role("button", name="Sign out")
    # one search box on every page, the top bar's (the CRM pages had a second one)
    expect(page.get_by_role("searchbox")).to_have_count(1)
    expect(
        page.get_by_role("searchbox", name="Search clients, companies, deals, portfolios and tickers")
    ).to_be_visible()
    if not is_phone(page):
        expect(menu).to_be_hidden()
        expect(clients).to_be_visible()
        expect(sign_out).to_be_visible()
        return
    # folded: the page's heading is near the top (it was 470 px down under two navigations)
    expect(menu).to_have_attribute("aria-expanded", "false")
    assert set(menu.get_attribute("aria-controls").split()) == {"account-menu", "main-nav"}
    expect(clients).to_be_hidden()
    expect(sign_out).to_be_hidden()
    heading_top = page.get_by_role("heading", name="Clients and contacts").bounding_box()["y"]
    assert heading_top < 260, heading_top
    shot(page, "menu-closed")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(clients).to_be_visible()
    expect(sign_out).to_be_visible()
    shot(page, "menu-open")
    assert axe_check(page, "menu-open") == []
    # Escape folds it again and gives the focus back to the button
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(clients).to_be_hidden()
    expect(menu).to_be_focused()
    menu.click()
    clients.click()
    page.wait_for_url(server.firm_url(firm_a["slug"], "/crm/contacts/"))


def test_firm_user_cannot_reach_another_firms_pages(browser, server, firm_a, viewport):
    run = firm_a["run"]
    slug_b = f"web-b-{run}"
    context = new_context(browser, viewport)
    page = context.new_page()
    sign_up(page, server, slug=slug_b, name=f"Browser Firm B {run}", email=f"owner-{run}@web-b.example")
    # Firm B's session means nothing on firm A's host: sent to A's sign-in page.
    page.goto(server.firm_url(firm_a["slug"], "/accounts/team/"))
    assert "/accounts/login/" in page.url
    # And A's owner cannot sign in at B.
    close_checked(context, page)
    context = new_context(browser, viewport)
    page = context.new_page()
    page.goto(server.firm_url(slug_b, "/accounts/login/"))
    page.get_by_label("E-mail").fill(firm_a["email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # The refusal is on the page B answered (not the form before it was sent).
    expect(page.get_by_role("alert")).to_be_visible()
    assert "/accounts/login/" in page.url
    close_checked(context, page)


FRONTEND_HTML = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Firm website</title></head>
<body><main><h1>Our firm</h1><p id="result">pending</p>
<script>
async function callApi(apiBase, key) {
  try {
    const r = await fetch(apiBase + "/api/v1/tenant/", {headers: {"X-API-Key": key}});
    const body = await r.json();
    document.getElementById("result").textContent = "ok:" + r.status + ":" + body.slug;
    return "ok:" + r.status + ":" + body.slug;
  } catch (e) {
    document.getElementById("result").textContent = "blocked";
    return "blocked";
  }
}
</script></main></body></html>"""


def test_static_frontend_on_another_origin_calls_the_api_with_cors(
    owner_page, browser, server, static_site, firm_a, viewport
):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/accounts/api-keys/"))
    page.get_by_label("Name").fill("Static site")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("code.secret").inner_text()
    api = server.url("api.localhost", "")

    context = new_context(browser, viewport)
    site = context.new_page()
    # The configured origin: allowed.
    site.goto(f"http://127.0.0.1:{static_site.port}/index.html")
    outcome = site.evaluate("([base, key]) => callApi(base, key)", [api, key])
    assert outcome == f"ok:200:{firm_a['slug']}"
    shot(site, "static-frontend")
    # The same page from another origin (localhost is not 127.0.0.1 for CORS): the browser blocks it.
    site.goto(f"http://localhost:{static_site.port}/index.html")
    assert site.evaluate("([base, key]) => callApi(base, key)", [api, key]) == "blocked"
    close_checked(context, site)


# --- Domain journeys: clients, portfolios, pipeline, newsletter, billing ----------------------------


def field(scope, label: str):
    """The input labelled ``label`` (or ``label (optional)``), exactly: no partial matches."""
    return scope.get_by_label(re.compile(rf"^{re.escape(label)}( \(optional\))?$"))


def _option_value(select, text: str) -> str:
    return select.locator("option", has_text=text).first.get_attribute("value")


def test_add_client_create_portfolio_record_transactions_see_chart_and_returns(owner_page, server, firm_a):
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    page.goto(base + "crm/contacts/")
    shot(page, "clients-empty")
    page.get_by_role("link", name="New contact").click()
    field(page, "First name").fill("Ada")
    field(page, "Last name").fill("Lovelace")
    field(page, "Email").fill(f"ada-{RUN}@client.example")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile("Ada Lovelace"))).to_be_visible()

    page.goto(base + "portfolios/new/")
    field(page, "Name").fill("Ada growth")
    client = field(page, "Client")
    client.select_option(_option_value(client, "Ada Lovelace"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile("Ada growth"))).to_be_visible()
    portfolio_url = page.url

    start = date.today() - timedelta(days=200)
    for kind, fields in (
        ("deposit", {"Amount": "20000"}),
        ("buy", {"Instrument": "AAPL", "Quantity": "40", "Price": "150"}),
        ("buy", {"Instrument": "MSFT", "Quantity": "10", "Price": "300"}),
    ):
        page.goto(portfolio_url + "transactions/new/")
        field(page, "Kind").select_option(kind)
        field(page, "Trade date").fill(start.isoformat())
        for label, value in fields.items():
            if label == "Instrument":
                # the searchable picker: type the ticker, pick the suggestion (it names the instrument)
                search = page.get_by_role("combobox", name=re.compile("^Instrument"))
                search.fill(value)
                page.get_by_role("option", name=re.compile(rf"^{value} ")).first.click()
            else:
                field(page, label).fill(value)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", name="Transactions")).to_be_visible()
        # the success message sits in the ledger card, in view where the page lands (#ledger)
        expect(page.locator("[data-ledger-message]")).to_be_in_viewport()

    page.goto(portfolio_url)
    expect(page.get_by_role("heading", name=re.compile("^Growth"))).to_be_visible()
    assert page.locator("svg").count() >= 1
    expect(page.get_by_text("TWR since inception")).to_be_visible()
    expect(page.get_by_text("MWR (XIRR)").first).to_be_visible()
    expect(page.get_by_role("heading", name="Returns by period")).to_be_visible()
    shot(page, "portfolio-detail")
    assert axe_check(page, "portfolio-detail") == []

    page.goto(base + "crm/contacts/")
    # on a phone the clients table is a card list: each row a card, each value under its column's name
    row = page.locator("table.card-list tbody tr").filter(has_text="Lovelace")
    assert row.evaluate("r => getComputedStyle(r).display") == ("grid" if is_phone(page) else "table-row")
    assert row.bounding_box()["width"] <= page.viewport_size["width"]
    page.locator("main").get_by_role("link", name=re.compile("Lovelace")).first.click()
    expect(page.get_by_role("heading", name=re.compile("Ada Lovelace"))).to_be_visible()
    # money first: the wealth card comes before the relationship and the timeline, with a sparkline
    expect(page.get_by_role("heading", name=re.compile("^Wealth"))).to_be_in_viewport()
    expect(page.locator("[data-record-ytd]")).to_contain_text("%")
    page.locator(".chips").get_by_role("link", name="Transactions").click()
    expect(page.locator(".timeline li").first).to_contain_text("Ada growth")
    shot(page, "client-record")
    assert axe_check(page, "client-record") == []

    page.goto(base)
    # Ticked off, or the whole checklist gone once every step is done (invite and key came earlier).
    for step in ("client", "transactions"):
        item = page.locator(f'[data-step="{step}"]')
        assert item.count() == 0 or "done" in (item.get_attribute("class") or ""), step
    expect(page.get_by_role("link", name="Ada growth")).to_be_visible()
    shot(page, "dashboard-with-book")
    assert axe_check(page, "dashboard-with-book") == []

    for path, name in (
        ("portfolios/", "portfolios"),
        ("portfolios/exposure/", "exposure"),
        ("portfolios/alerts/", "alerts"),
        ("crm/contacts/", "clients"),
        ("crm/deals/", "deals"),
        ("crm/tasks/", "tasks"),
        ("crm/search/?q=Ada", "search"),
    ):
        page.goto(base + path)
        shot(page, name)
        assert axe_check(page, name) == [], name


def test_crm_import_preview_fits_its_card(owner_page, server, firm_a, tmp_path):
    """A wide CSV (ten columns, long values): the preview table scrolls inside its card, never the
    page; it was 1,683 px wide even on a desktop (issue 25)."""
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    columns = "First name,Last name,Email,Phone,Company,Job title,Lifecycle,Tags,Source,Notes"
    rows = [
        f"Grace{i},Hopper-Longname-{i},grace{i}-{RUN}@navy.example,+1 555 0100 {i},"
        f"Harvard Computation Laboratory {i},Rear admiral and computer scientist,lead,"
        f'"cobol;compilers;navy",conference-2026-autumn-series,{"A long note about the meeting " * 6}'
        for i in range(3)
    ]
    upload = tmp_path / "wide-contacts.csv"
    upload.write_text("\n".join([columns, *rows]) + "\n", encoding="utf-8")
    page.goto(base + "crm/import/")
    page.get_by_label("Kind").select_option("contacts")
    page.get_by_label("File").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_role("heading", name="2. Preview")).to_be_visible()
    expect(page.get_by_text("Will create")).to_contain_text("3")
    table = page.get_by_role("table", name="First rows")
    expect(table).to_contain_text(f"grace2-{RUN}@navy.example")
    card = page.locator("section.card", has=table)
    width = page.viewport_size["width"]
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert card.evaluate("c => getComputedStyle(c).overflowX") == "auto"
    if is_phone(page):  # far wider than the card: the card scrolls it sideways
        assert card.evaluate("c => c.scrollWidth > c.clientWidth")
    shot(page, "crm-import-preview")
    assert axe_check(page, "crm-import-preview") == []


def _visible_fields(form) -> set[str]:
    return {
        box.get_attribute("data-field")
        for box in form.locator(".txn-fields [data-field], .lot-table[data-field]").all()
        if box.is_visible()
    }


def test_transaction_entry_per_kind_lot_table_chart_hover_and_undo_delete(owner_page, server, firm_a):
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    page.goto(base + "portfolios/new/")
    field(page, "Name").fill(f"Kinds {RUN}")
    page.get_by_role("button", name="Save").click()
    portfolio_url = page.url
    start = date.today() - timedelta(days=120)

    page.goto(portfolio_url + "transactions/new/")
    form = page.locator("form.txn-form")
    # the fields follow the kind (11 kinds): a deposit asks for an amount, a split for a ratio only
    field(page, "Kind").select_option("deposit")
    assert _visible_fields(form) == {"kind", "trade_date", "amount", "currency", "fx_rate", "note"}
    field(page, "Kind").select_option("split")
    assert _visible_fields(form) == {"kind", "trade_date", "instrument", "quantity", "note"}
    field(page, "Kind").select_option("dividend")
    assert "quantity" not in _visible_fields(form) and "amount" in _visible_fields(form)
    field(page, "Kind").select_option("sell")
    assert {"instrument", "quantity", "price", "lots"} <= _visible_fields(form)
    assert axe_check(page, "transaction-form") == []
    shot(page, "transaction-form-sell")

    # record a deposit and two buys of Apple, searching it by its name
    for kind, trade_day, fields in (
        ("deposit", start, {"Amount": "50000"}),
        ("buy", start, {"Quantity": "10", "Price": "100"}),
        ("buy", start + timedelta(days=30), {"Quantity": "5", "Price": "120"}),
    ):
        page.goto(portfolio_url + "transactions/new/")
        field(page, "Kind").select_option(kind)
        field(page, "Trade date").fill(trade_day.isoformat())
        if kind == "buy":
            search = page.get_by_role("combobox", name=re.compile("^Instrument"))
            search.fill("apple")
            option = page.get_by_role("option", name=re.compile("^AAPL"))
            expect(option).to_contain_text("Apple Inc.")
            search.press("ArrowDown")
            search.press("Enter")
            expect(search).to_have_value(re.compile("^AAPL · Apple Inc."))
        for label, value in fields.items():
            field(page, label).fill(value)
        page.get_by_role("button", name="Save").click()
        expect(page.locator("[data-ledger-message]")).to_contain_text("Recorded the")
        expect(page.locator("[data-ledger-message]")).to_be_in_viewport()

    # sell from the second lot by the lot table; a bad figure is refused next to the table, input kept
    page.goto(portfolio_url + "transactions/new/")
    field(page, "Kind").select_option("sell")
    field(page, "Trade date").fill((start + timedelta(days=60)).isoformat())
    search = page.get_by_role("combobox", name=re.compile("^Instrument"))
    search.fill("AAPL")
    page.get_by_role("option", name=re.compile("^AAPL")).first.click()
    field(page, "Quantity").fill("3")
    field(page, "Price").fill("130")
    lots = page.locator(".lot-table tbody tr")
    expect(lots).to_have_count(2)
    lots.nth(1).locator("input").fill("three")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".lot-table div.error")).to_contain_text("Enter a number of units")
    expect(page.locator(".lot-table tbody tr").nth(1).locator("input")).to_have_value("three")
    page.locator(".lot-table tbody tr").nth(1).locator("input").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-ledger-message]")).to_contain_text("Recorded the sell of 3 AAPL")

    # the growth chart: range tabs, and a crosshair with a tooltip on hover
    page.goto(portfolio_url)
    expect(page.get_by_role("list", name="Range").get_by_role("link", name="YTD")).to_be_visible()
    chart = page.locator("svg.chart[data-chart]").first
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    tip = page.locator(".chart-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("%")
    expect(chart.locator(".crosshair-layer")).to_have_attribute("visibility", "visible")
    shot(page, "portfolio-chart-hover")
    page.get_by_role("list", name="Range").get_by_role("link", name="1M").click()
    expect(page.get_by_role("list", name="Range").get_by_role("link", name="1M")).to_have_attribute(
        "aria-current", "page"
    )

    # delete asks first, then offers Undo in the ledger card, which brings the row back
    rows = page.locator("#ledger-table tbody tr")
    before = rows.count()
    page.once("dialog", lambda dialog: dialog.accept())
    rows.filter(has_text="Sell").get_by_role("button", name=re.compile("^Delete")).click()
    message = page.locator("[data-ledger-message]")
    expect(message).to_contain_text("Deleted the sell of 3 AAPL")
    expect(message).to_be_in_viewport()
    expect(page.locator("#ledger-table tbody tr")).to_have_count(before - 1)
    message.get_by_role("button", name="Undo").click()
    expect(page.locator("[data-ledger-message]")).to_contain_text("Restored the sell of 3 AAPL")
    expect(page.locator("#ledger-table tbody tr")).to_have_count(before)
    assert axe_check(page, "portfolio-after-undo") == []


def _stage_column(page, name: str):
    return page.locator(".column", has=page.get_by_role("heading", name=re.compile(f"^{name}")))


def test_move_a_deal_on_the_board(owner_page, server, firm_a):
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    page.goto(base + "crm/deals/new/")
    field(page, "Title").fill(f"Mandate {RUN}")
    field(page, "Amount").fill("250000")
    stage = field(page, "Stage")
    stage.select_option(_option_value(stage, "Lead"))
    page.get_by_role("button", name="Save").click()
    errors = page.locator(".errors, .error").all_inner_texts()
    assert errors == [], errors
    expect(page).to_have_url(re.compile(r"/crm/deals/\d+/$"))
    deal_id = re.search(r"/crm/deals/(\d+)/$", page.url).group(1)

    def on_server() -> dict:
        # through the browser (its session; Chromium resolves *.localhost, Playwright's requests do not)
        return page.evaluate(
            "async (url) => { const r = await fetch(url); if (!r.ok) throw new Error(r.status); return r.json(); }",
            f"/api/v1/deals/{deal_id}/",
        )

    page.goto(base + "crm/pipeline/")
    card = page.locator(".deal-card", has_text=f"Mandate {RUN}")
    expect(_stage_column(page, "Lead").locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_visible()
    shot(page, "pipeline")
    page.evaluate("window.__sameDocument = true")  # a full reload would drop it
    # Drag and drop with the mouse: the card lands in Qualified and the server has it there.
    # the card held by its corner (on a phone the narrow card's middle may be its Move control)
    card.drag_to(_stage_column(page, "Qualified"), source_position={"x": 6, "y": 6})
    expect(page.locator(".messages")).to_contain_text("is now in Qualified")
    expect(_stage_column(page, "Qualified").locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_visible()
    assert on_server()["stage_name"] == "Qualified"
    assert page.evaluate("window.__sameDocument === true")  # moved without leaving the page

    # The keyboard: focus the card, Space picks it up, Right chooses the next stage, Space drops.
    card = page.locator(".deal-card", has_text=f"Mandate {RUN}")
    card.focus()
    page.keyboard.press("Space")
    expect(page.locator("#board-status")).to_contain_text("Picked up")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    expect(page.locator(".messages")).to_contain_text("is now in Proposal")  # the server's answer, redrawn
    expect(_stage_column(page, "Proposal").locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_visible()
    expect(page.locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_focused()  # focus follows the card
    assert on_server()["stage_name"] == "Proposal"

    # To Lost: the reason is asked for first; cancelling leaves the deal where it was.
    lost = _stage_column(page, "Lost")
    lost.scroll_into_view_if_needed()
    expect(lost).to_be_in_viewport()  # the last column is reachable, not cut off
    no_page_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_page_scroll)  # the board scrolls inside its card, not the page
    card = page.locator(".deal-card", has_text=f"Mandate {RUN}")

    def to_lost() -> None:
        if not is_phone(page):
            card.drag_to(lost)
            return
        # On a phone, Proposal and Lost are never on screen together (the board scrolls inside its
        # card), so no pointer can drag between them: the phone pass moves the card with the keyboard
        # (the same move(), the same dialog); the mouse drag to Lost is checked by the desktop pass.
        card.focus()
        page.keyboard.press("Space")
        for _ in range(6):  # to the last column, Lost (the arrows stop there)
            page.keyboard.press("ArrowRight")
        expect(page.locator("#board-status")).to_contain_text("Lost")
        page.keyboard.press("Space")

    to_lost()
    dialog = page.get_by_role("dialog", name="Why was this deal lost?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert on_server()["status"] == "open" and on_server()["stage_name"] == "Proposal"
    to_lost()
    expect(dialog).to_be_visible()
    assert axe_check(page, "pipeline-lost-reason") == []
    dialog.get_by_label("Reason").fill("Chose a bank's in-house desk")
    dialog.get_by_role("button", name="Move to Lost").click()
    expect(page.locator(".messages")).to_contain_text("is now in Lost")
    expect(lost.locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_visible()
    deal = on_server()
    assert deal["status"] == "lost" and deal["close_reason"] == "Chose a bank's in-house desk"

    # The card's own form, inside "Move": what a browser without JavaScript uses.
    card = page.locator(".deal-card", has_text=f"Mandate {RUN}")
    card.locator("summary").click()
    select = card.get_by_label(re.compile("Move .* to"))
    select.select_option(_option_value(select, "Negotiation"))
    card.get_by_role("button", name="Move").click()
    expect(_stage_column(page, "Negotiation").locator(".deal-card", has_text=f"Mandate {RUN}")).to_be_visible()
    assert on_server()["stage_name"] == "Negotiation" and on_server()["status"] == "open"
    assert axe_check(page, "pipeline") == []


def test_change_plan_with_the_proration_preview(owner_page, server, firm_a):
    # A paying firm (out of trial) sees the proration; make firm A's subscription active.
    server.manage(
        "shell",
        "-c",
        "from billing.models import Subscription; "
        f"Subscription.objects.filter(tenant__slug='{firm_a['slug']}').update(status='active')",
    )
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    page.goto(base + "billing/")
    shot(page, "billing")
    assert axe_check(page, "billing") == []
    page.goto(base + "billing/change/")
    plan = field(page, "Plan")
    plan.select_option(_option_value(plan, "Pro"))
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("section", has=page.get_by_role("heading", name=re.compile("Starter .* Pro")))
    expect(preview).to_be_visible()
    expect(preview.get_by_text("Credit for unused time on Starter")).to_be_visible()
    expect(preview.get_by_role("row", name=re.compile("^Net"))).to_be_visible()
    shot(page, "billing-change-preview")
    assert axe_check(page, "billing-change-preview") == []
    page.get_by_role("button", name="Confirm the change").click()
    page.goto(base + "billing/")
    expect(page.get_by_text("Pro").first).to_be_visible()


def test_send_a_newsletter_to_a_test_subscriber(owner_page, browser, server, firm_a, viewport):
    """Runs after the plan change: the newsletter is a Pro feature."""
    page = owner_page
    base = server.firm_url(firm_a["slug"])
    reader = f"reader-{RUN}@subscriber.example"
    page.goto(base + "crm/newsletter/")
    mark = len(server.output())
    field(page, "E-mail address").fill(reader)
    page.get_by_role("button", name="Send confirmation").click()
    link = server.wait_for_email(to=reader, pattern=r"http://\S+/crm/newsletter/confirm/\S+/", after=mark).group(0)
    visitor = new_context(browser, viewport)
    confirm = visitor.new_page()
    confirm.goto(link)
    confirm.get_by_role("button", name="Yes, subscribe me").click()
    expect(confirm.get_by_role("heading", name="Subscription confirmed")).to_be_visible()
    close_checked(visitor, confirm)

    page.goto(base + "crm/newsletter/campaigns/new/")
    field(page, "Subject").fill(f"Market letter {RUN}")
    field(page, "Body").fill("Dear reader,\n\nMarkets were calm this quarter.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    shot(page, "newsletter-campaign")
    mark = len(server.output())
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_role("heading", name="Send report")).to_be_visible()
    assert server.wait_for_email(to=reader, pattern="Markets were calm this quarter", after=mark)
    page.goto(base + "crm/newsletter/")
    shot(page, "newsletter")
    assert axe_check(page, "newsletter") == []


def _raise_notice(server, firm: dict, title: str) -> None:
    """A notice raised server-side, outside any page: what an alert or a finished import does."""
    server.manage(
        "shell",
        "-c",
        "from django_tenants.utils import schema_context\n"
        "from tenants.models import Tenant\n"
        "from tenants.accounts.models import User\n"
        "from codex.notifications.services import notification_send\n"
        f"firm = Tenant.objects.get(slug={firm['slug']!r})\n"
        "with schema_context(firm.schema_name):\n"
        f"    user = User.objects.get(email={firm['email']!r})\n"
        f"    notification_send(recipients=[user], kind='alert', title={title!r}, url='/portfolios/alerts/')\n",
    )


def test_a_notice_raised_on_the_server_appears_in_the_bell_without_a_reload(owner_page, server, firm_a):
    page = owner_page
    page.goto(server.firm_url(firm_a["slug"], "/"))
    bell = page.locator("[data-live-bell]")
    expect(bell).to_have_attribute("data-live", "stream")  # the page holds a live stream
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    before = int(bell.get_attribute("data-unread") or page.locator("[data-live-count]").inner_text() or 0)
    title = f"Live notice {RUN}"
    _raise_notice(server, firm_a, title)
    expect(page.locator("[data-live-count]")).to_have_text(str(before + 1), timeout=20_000)
    expect(page.locator("[data-live-announce]")).to_have_text(f"New notification: {title}")
    assert page.evaluate("window.__sameDocument === true")
    page.locator(".bell-link").click()
    expect(page.locator("[data-live-list]")).to_contain_text(title)
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("[data-live-count]")).to_be_hidden()
    shot(page, "notifications-bell")


def test_without_a_stream_the_bell_falls_back_to_polling(owner_page, server, firm_a):
    page = owner_page
    page.route("**/live/stream**", lambda route: route.abort())  # the stream cannot be reached
    # the first poll lists what is there already (no announcement): raise the notice after it
    with page.expect_response(lambda r: "/notifications/live/" in r.url and r.ok):
        page.goto(server.firm_url(firm_a["slug"], "/crm/contacts/"))
    bell = page.locator("[data-live-bell]")
    expect(bell).to_have_attribute("data-live", "polling")
    page.evaluate("window.__sameDocument = true")
    title = f"Polled notice {RUN}"
    _raise_notice(server, firm_a, title)
    expect(page.locator("[data-live-announce]")).to_have_text(f"New notification: {title}", timeout=20_000)
    assert page.evaluate("window.__sameDocument === true")


# --- The client portal (issue 22) ---------------------------------------------------------------------------
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


FETCH = """async ([path, method, body, csrf]) => {
  const init = {method, credentials: "same-origin", headers: {"Accept": "application/json"}};
  if (method !== "GET") {
    init.body = body;
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRFToken"] = csrf;
  }
  const r = await fetch(path, init);
  return {status: r.status, text: await r.text()};
}"""


def _fetch(page, path: str, method: str = "GET", data: dict | None = None) -> tuple[int, str]:
    """A request from inside the page (Chromium resolves *.localhost; the page's cookies go along)."""
    csrf = next((c["value"] for c in page.context.cookies(page.url) if c["name"] == "csrftoken"), "")
    result = page.evaluate(FETCH, [path, method, json.dumps(data or {}), csrf])
    return result["status"], result["text"]


def _staff_api(page, path: str, data: dict | None = None, method: str = "POST") -> dict:
    status, text = _fetch(page, path, method, data)
    assert status < 300, (path, status, text[:300])
    return json.loads(text)


def test_client_portal_journey(owner_page, browser, server, firm_a, viewport, tmp_path):
    """Advisor invites a client -> the client sets a password -> sees the staff page's value and
    return -> downloads a statement -> cannot reach another client's portfolio by URL or API."""
    page, slug = owner_page, firm_a["slug"]
    page.goto(server.firm_url(slug, "/"))
    day = (date.today() - timedelta(days=10)).isoformat()
    email = f"client-{RUN}@portal.example"
    ada = _staff_api(
        page,
        "/api/v1/contacts/",
        {"first_name": "Ada", "last_name": "Portal", "email": email, "lifecycle": "client"},
    )
    bob = _staff_api(
        page,
        "/api/v1/contacts/",
        {"first_name": "Bob", "last_name": "Other", "email": f"bob-{RUN}@portal.example"},
    )
    mine = _staff_api(
        page,
        "/api/v1/portfolios/",
        {"name": "Ada growth", "client": ada["id"], "base_currency": "USD"},
    )
    theirs = _staff_api(
        page,
        "/api/v1/portfolios/",
        {"name": "Bob secret", "client": bob["id"], "base_currency": "USD"},
    )
    for pf, amount in ((mine, "12500"), (theirs, "999")):
        _staff_api(
            page,
            f"/api/v1/portfolios/{pf['id']}/transactions/",
            {"kind": "deposit", "trade_date": day, "amount": amount},
        )
    # the advisor uploads a statement and invites the client from the client's portal page
    page.goto(server.firm_url(slug, f"/client-portal/clients/{ada['id']}/"))
    statement = tmp_path / "statement.pdf"
    statement.write_bytes(PDF_BYTES)
    upload = page.locator("form[enctype='multipart/form-data']")
    upload.get_by_label("Title").fill("Q3 statement")
    upload.get_by_label("Kind").select_option("statement")
    upload.get_by_label("File").set_input_files(str(statement))
    upload.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Document stored.")).to_be_visible()
    mark = len(server.output())
    page.get_by_role("button", name="Invite to the portal").click()
    expect(page.get_by_text(f"Invitation sent to {email}")).to_be_visible()
    link = server.wait_for_email(to=email, pattern=r"http://\S+/portal/invitation/\S+/", after=mark).group(0)

    context = new_context(browser, viewport, accept_downloads=True)
    client = context.new_page()
    client.goto(link)
    client.get_by_label("Password", exact=True).fill(PASSWORD)
    client.get_by_label("Password again").fill(PASSWORD)
    client.get_by_role("button", name="Set password").click()
    client.wait_for_url(server.firm_url(slug, "/portal/"))
    # the same value and return as the staff page's figures
    staff_holdings = _staff_api(page, f"/api/v1/portfolios/{mine['id']}/holdings/", method="GET")
    staff_perf = _staff_api(page, f"/api/v1/portfolios/{mine['id']}/performance/", method="GET")
    assert staff_holdings["total_value"] == "12500"
    expect(client.get_by_test_id("total-value")).to_have_text("$12,500.00")
    portal = _staff_api(client, f"/api/v1/portal/portfolios/{mine['id']}/", method="GET")
    assert float(portal["total_value"]) == float(staff_holdings["total_value"])
    si = next(r for r in portal["returns"] if r["period"] == "SI")
    assert float(si["twr"]["value"]) == float(staff_perf["twr"]["value"])
    # nothing wider than the screen (at both sizes); accessible
    assert_no_page_scroll(client)
    shot(client, "portal-overview")
    assert axe_check(client, "portal-overview") == []
    client.get_by_role("link", name="Ada growth").click()
    expect(client.get_by_test_id("portfolio-value")).to_have_text("$12,500.00")
    assert axe_check(client, "portal-portfolio") == []
    # the value chart by keyboard: focusable, arrow keys move the point, the value is announced
    chart = client.get_by_role("slider").first
    chart.focus()
    last = chart.get_attribute("aria-valuetext")
    assert last and "$12,500.00" in last
    chart.press("Home")
    first = chart.get_attribute("aria-valuetext")
    assert first != last and chart.get_attribute("aria-valuenow") == "0"
    chart.press("ArrowRight")
    assert chart.get_attribute("aria-valuenow") == "1"
    # light/dark: the choice applies at once and is remembered across a reload; Auto follows the system
    client.get_by_role("group", name="Colour theme").get_by_role("button", name="Dark").click()
    assert client.evaluate("document.documentElement.dataset.theme") == "dark"
    client.reload()
    expect(client.get_by_test_id("portfolio-value")).to_have_text("$12,500.00")
    assert client.evaluate("document.documentElement.dataset.theme") == "dark"
    assert axe_check(client, "portal-portfolio-dark") == []
    client.get_by_role("group", name="Colour theme").get_by_role("button", name="Auto").click()
    assert client.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    # a statement downloads through its signed link
    client.get_by_role("link", name="Documents").click()
    with client.expect_download() as download:
        client.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == PDF_BYTES
    # another client's portfolio: neither by editing the URL nor by the API
    client.goto(server.firm_url(slug, f"/portal/portfolios/{theirs['id']}"))
    expect(client.get_by_role("alert")).to_have_text("Not found.")
    assert "Bob secret" not in client.content()
    status, text = _fetch(client, f"/api/v1/portal/portfolios/{theirs['id']}/")
    assert status == 404 and "Bob" not in text
    status, text = _fetch(client, f"/api/v1/portfolios/{theirs['id']}/")
    assert status == 404 and "Bob" not in text
    # transactions beyond one page: Next and Previous (13 deposits and 13 withdrawals of 10: 27 rows)
    for i in range(26):
        kind = "deposit" if i % 2 == 0 else "withdrawal"
        _staff_api(
            page, f"/api/v1/portfolios/{mine['id']}/transactions/", {"kind": kind, "trade_date": day, "amount": "10"}
        )
    client.goto(server.firm_url(slug, f"/portal/portfolios/{mine['id']}/transactions"))
    pager = client.get_by_role("navigation", name="Pages of transactions")
    expect(pager.get_by_role("status")).to_have_text("Page 1 of 2 · 27 transactions")
    expect(pager.get_by_role("button", name="Previous")).to_be_disabled()
    pager.get_by_role("button", name="Next").click()
    expect(pager.get_by_role("status")).to_have_text("Page 2 of 2 · 27 transactions")
    expect(client.locator("main tbody tr")).to_have_count(2)
    expect(pager.get_by_role("button", name="Next")).to_be_disabled()
    assert axe_check(client, "portal-transactions") == []
    close_checked(context, client)
