"""The fees app's lists (runs, invoices, subscriptions, products, billing groups): sorted,
filtered and paged through codex.tables; advisors see their own book; another firm nothing."""

from __future__ import annotations

from datetime import date

import pytest

from fees import services as fee_services
from tests.fees.conftest import account
from tests.portfolios.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(owner, advisor2, client_contact, product):
    """Ada (the owner's client) and Bea (advisor2's), each a household subscribed and invoiced."""
    other = ContactFactory(owner=advisor2, first_name="Bea", last_name="Book")
    groups = []
    for name, contact, amount in (("Ada household", client_contact, "1000000"), ("Bea household", other, "500000")):
        p = account(owner if contact is client_contact else advisor2, contact, {date(2026, 6, 1): amount}, name=name)
        group = fee_services.billing_group_create(name=name, client=contact, portfolios=[p])
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
        groups.append(group)
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    return groups


def _order(html: str, *names: str) -> list[str]:
    return sorted(names, key=html.index)


def test_invoices_sort_by_total_both_ways_with_currency(owner_client, book):
    up = owner_client.get("/fees/invoices/?sort=total").content.decode()
    # Bea 500,000 -> 1,260.27; Ada 1,000,000 -> 2,520.55
    assert _order(up, "$1,260.27", "$2,520.55") == ["$1,260.27", "$2,520.55"]
    down = owner_client.get("/fees/invoices/?sort=-total").content.decode()
    assert _order(down, "$1,260.27", "$2,520.55") == ["$2,520.55", "$1,260.27"]
    assert 'aria-sort="descending"' in down


def test_invoices_filter_by_search_and_status(owner_client, book):
    page = owner_client.get("/fees/invoices/?q=Bea").content.decode()
    assert "Bea household" in page and "Ada household" not in page
    assert "No fee invoices match." in owner_client.get("/fees/invoices/?status=void").content.decode()


def test_lists_page_25_to_a_page(owner, owner_client, client_contact, product):
    for i in range(26):
        fee_services.product_create(name=f"Package {i:02d}", flat_fee="100")
    first = owner_client.get("/fees/products/?sort=name").content.decode()
    assert "Package 00" in first and "Package 25" not in first and "of 27" in first  # 26 + the fixture's
    second = owner_client.get("/fees/products/?sort=name&page=2").content.decode()
    assert "Package 25" in second and "Wealth management" in second
    archived = owner_client.get("/fees/products/?status=archived").content.decode()
    assert "No products match." in archived


def test_groups_and_subscriptions_sort_and_filter(owner_client, book):
    groups = owner_client.get("/fees/groups/?sort=-name").content.decode()
    assert _order(groups, "Ada household", "Bea household") == ["Bea household", "Ada household"]
    subs = owner_client.get("/fees/subscriptions/?q=Ada&state=active").content.decode()
    assert "Ada household" in subs and "Bea household" not in subs
    assert "No subscriptions match." in owner_client.get("/fees/subscriptions/?frequency=monthly").content.decode()


def test_runs_list_filters_by_status(owner_client, book):
    assert "Issued" in owner_client.get("/fees/runs/?status=issued").content.decode()
    assert "No fee runs match." in owner_client.get("/fees/runs/?status=preview").content.decode()


def test_an_advisor_lists_only_their_books_groups_and_invoices(advisor2, client_for, book):
    api = client_for(advisor2)
    groups = api.get("/fees/groups/").content.decode()
    assert "Bea household" in groups and "Ada household" not in groups
    invoices = api.get("/fees/invoices/").content.decode()
    assert "Bea household" in invoices and "Ada household" not in invoices


def test_another_firm_lists_none_of_this_firms_fees(outsider, client_for, other_firm, book):
    api = client_for(outsider, other_firm)
    for path in ("/fees/invoices/", "/fees/groups/", "/fees/subscriptions/", "/fees/products/"):
        response = api.get(path)
        assert response.status_code == 200, path  # their own (empty) list, on their host
        page = response.content.decode()
        assert "Ada household" not in page and "Wealth management" not in page and "match." in page
