"""Every link of the navigation opens for the person it is shown to (issue #25: the advisor's sidebar
linked to the newsletter, which is forbidden to them). For each staff role, the links of the header
and of every navigation (the sidebar, the CRM's bar; not pagers or breadcrumbs) on the main pages
are followed: each must answer 200, never 403, 404 or a redirect to sign in."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db

# Pages whose navigation differs (the CRM's bar, the portfolio pages, settings, fees).
PAGES = ["/", "/crm/contacts/", "/portfolios/", "/settings/", "/fees/", "/billing/"]
SKIP = ("/accounts/logout/", "/theme/")  # forms' actions, not links


class _NavLinks(HTMLParser):
    """``href``s of the ``<a>`` inside ``<header>`` and inside every ``<nav>`` that is not a pager."""

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []  # per open header/nav: does it count?
        self.links: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "header":
            self.stack.append(True)
        elif tag == "nav":
            label = (attrs.get("aria-label") or "").lower()
            self.stack.append("page" not in label and "breadcrumb" not in label)
        elif tag == "a" and self.stack and self.stack[-1]:
            href = attrs.get("href") or ""
            if href.startswith("/") and not href.startswith(SKIP):
                self.links.add(href.split("#")[0])

    def handle_endtag(self, tag):
        if tag in ("header", "nav") and self.stack:
            self.stack.pop()


def nav_links(html: str) -> set[str]:
    parser = _NavLinks()
    parser.feed(html)
    return parser.links


@pytest.mark.parametrize("role", ["owner", "admin", "advisor", "viewer"])
def test_every_navigation_link_shown_to_a_role_opens_for_it(role, client_for, owner, admin_user, advisor, viewer):
    user = {"owner": owner, "admin": admin_user, "advisor": advisor, "viewer": viewer}[role]
    client = client_for(user)
    links: set[str] = set()
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, f"{role}: {page} answered {response.status_code}"
        links |= nav_links(response.content.decode())
    assert {"/", "/crm/contacts/", "/portfolios/", "/settings/"} <= links  # the parser found the sidebar
    refused = {}
    for link in sorted(links):
        status = client.get(link).status_code
        if status != 200:
            refused[link] = status
    assert refused == {}, f"{role} is shown links they cannot open: {refused}"


def test_what_each_role_is_not_shown(client_for, owner, advisor, viewer):
    """The hidden links are the forbidden ones: the advisor sees no newsletter or team, the viewer
    (read-only) no import; the owner sees all three."""
    seen = {
        role: set().union(*(nav_links(client_for(user).get(page).content.decode()) for page in PAGES))
        for role, user in (("owner", owner), ("advisor", advisor), ("viewer", viewer))
    }
    assert {"/crm/newsletter/", "/accounts/team/", "/crm/import/"} <= seen["owner"]
    assert "/crm/newsletter/" not in seen["advisor"] and "/accounts/team/" not in seen["advisor"]
    assert client_for(advisor).get("/crm/newsletter/").status_code == 403
    assert client_for(advisor).get("/accounts/team/").status_code == 403
    assert "/crm/import/" not in seen["viewer"] and "/crm/newsletter/" in seen["viewer"]
    assert client_for(viewer).get("/crm/import/").status_code == 403
