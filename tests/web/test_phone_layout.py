"""The phone layout's markup (issue 25 point 8, docs/decisions/1250): one search box, a Menu button
that names what it folds. How it looks and works at 390x844 is checked by the browser journeys."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

MENU = re.compile(r"<button type=\"button\" class=\"menu-toggle[^>]*>", re.S)


def _menu_button(html: str) -> str:
    buttons = MENU.findall(html)
    assert len(buttons) == 1, buttons
    return buttons[0]


def test_staff_pages_have_one_search_box_and_a_menu_for_the_account_and_the_navigation(owner_client):
    for path in ("/", "/crm/contacts/", "/crm/pipeline/", "/crm/search/?q=ada"):
        html = owner_client.get(path).content.decode()
        assert html.count('type="search"') == 1, path  # the CRM pages had a second box of their own
        button = _menu_button(html)
        assert 'aria-expanded="false"' in button and 'aria-controls="account-menu main-nav"' in button
        assert 'id="account-menu"' in html and '<nav class="sidebar" id="main-nav" aria-label="Main">' in html
        assert "Menu" in html.split(button, 1)[1].split("</button>", 1)[0]


def test_the_search_page_keeps_what_was_searched_in_the_one_box(owner_client):
    html = owner_client.get("/crm/search/?q=lovelace").content.decode()
    assert re.search(r'<input type="search" id="global-search" name="q"[^>]*value="lovelace"', html)


def test_public_site_menu_folds_its_links_only(public_client):
    html = public_client.get("/pricing/").content.decode()
    button = _menu_button(html)
    assert 'aria-controls="account-menu"' in button
    menu = html.split('id="account-menu"', 1)[1]
    assert 'aria-label="Site"' in menu and 'class="theme-switch"' in menu


def test_signed_out_firm_page_has_no_menu(anon_client):
    html = anon_client.get("/accounts/login/").content.decode()
    assert "menu-toggle" not in html and 'id="account-menu"' not in html
    assert 'class="theme-switch"' in html


def test_the_wide_lists_are_card_lists_with_each_value_named(owner, owner_client):
    """Clients, portfolios and deals: on a phone each row is a card and each value sits under its
    column's name (``data-label``, shown by the card-list CSS); the header stays sort links."""
    from tests.crm.factories import DealFactory
    from tests.portfolios.factories import PortfolioFactory

    PortfolioFactory(name="Lovelace growth", advisor=owner)
    DealFactory(title="Mandate Hopper", owner=owner)
    for path, labels in (
        ("/portfolios/", ("Client", "Advisor", "Value", "Return YTD", "Since inception")),
        ("/crm/deals/", ("Contact", "Stage", "Amount", "Probability", "Expected close", "Owner")),
    ):
        html = owner_client.get(path).content.decode()
        assert re.search(r'<table class="table[^"]*\bcard-list\b', html), path
        for label in labels:
            assert f'data-label="{label}"' in html, (path, label)
