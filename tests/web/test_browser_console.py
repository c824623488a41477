"""The operators' console in Chromium (issue 25 point 7): an operator signs in with password and
TOTP, then the admin home, the firm list, a firm's page, revenue and platform status load with no
Content-Security-Policy violation and no console error.

A module of its own (with its own live server) so that the firm journeys' module stays as it is.
"""

from __future__ import annotations

import time
from binascii import unhexlify

import pytest
from django_otp.oath import totp

from .live import ARTIFACTS
from .test_browser import PAGE_WIDTH, browser, server, static_site  # noqa: F401 - fixtures shared with the journeys

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

OPERATOR = "ops-browser@codex.test"
PASSWORD = "Browser-console-2026!"
TOTP_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test secret, hex

# Run in the live server's own database (public schema): an operator with a confirmed TOTP device,
# and the primary key of the fixtures' firm "acme".
SETUP = f"""
from tenants.accounts.models import SealedTOTPDevice, User
from tenants.models import Tenant
user = User.objects.filter(email="{OPERATOR}").first() or User.objects.create_superuser("{OPERATOR}", "{PASSWORD}")
SealedTOTPDevice.objects.filter(user=user).delete()
device = SealedTOTPDevice(user=user, name="browser", confirmed=True)
device.key = "{TOTP_KEY}"
device.save()
print("FIRM", Tenant.objects.get(slug="acme").pk)
"""

# Collects every CSP violation the page reports, from the first script on (an init script is not
# subject to the page's CSP).
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""


def current_code() -> str:
    return f"{totp(unhexlify(TOTP_KEY), step=30, t0=0, digits=6):06d}"


@pytest.fixture
def operator_page(browser, server):  # noqa: F811 - the imported fixtures
    firm_pk = int(server.manage("shell", "-c", SETUP).split("FIRM", 1)[1].split()[0])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server.url(path="/admin/login/?next=/admin/"))
    page.locator("#id_username").fill(OPERATOR)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit], button[type=submit]").first.click()
    page.wait_for_url("**/accounts/security/2fa/verify/**")
    # A code is accepted once: wait for a fresh 30-second step if this one is about to end.
    if 30 - time.time() % 30 < 3:
        time.sleep(4)
    page.get_by_label("Code").fill(current_code())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(server.url(path="/admin/"))
    yield page, errors, firm_pk
    context.close()


def test_console_pages_load_without_csp_violations_or_console_errors(operator_page, server):  # noqa: F811
    page, errors, firm_pk = operator_page
    visited, too_wide = {}, {}
    # At a desktop's size, then at a phone's (issue 25 point 8): no page scrolls sideways either.
    for size, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
        page.set_viewport_size(viewport)
        for name, path in (
            ("home", "/admin/"),
            ("firms", "/admin/tenants/tenant/"),
            ("firm", f"/admin/tenants/tenant/{firm_pk}/change/"),
            ("revenue", "/admin/billing/invoice/revenue/"),
            ("status", "/admin/platform_status/servicecheck/"),
        ):
            errors.clear()
            response = page.goto(server.url(path=path))
            assert response is not None and response.status == 200, (path, response and response.status)
            page.wait_for_load_state("load")
            violations = page.evaluate("window.__cspViolations")
            visited[f"{name}-{size}"] = (violations, list(errors))
            width = page.evaluate(PAGE_WIDTH)  # [page width, window width, what sticks out]
            if width[0] > width[1]:
                too_wide[f"{name}-{size}"] = width
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"console-{name}-{size}.png"), full_page=True)
    assert {name: v for name, v in visited.items() if v != ([], [])} == {}
    assert too_wide == {}
    page.set_viewport_size({"width": 1280, "height": 900})
    # The home links the pages that are not a model's list; the firm's page shows its summary.
    page.goto(server.url(path="/admin/"))
    page.get_by_role("link", name="Revenue", exact=True).click()
    page.wait_for_url("**/admin/billing/invoice/revenue/")
    page.goto(server.url(path=f"/admin/tenants/tenant/{firm_pk}/change/"))
    assert page.get_by_role("heading", name="Plan and billing").is_visible()
    assert page.get_by_role("heading", name="People and activity").is_visible()
