"""The clients list (sortable, filtered, paged by URL; columns chosen per person; AUM and YTD from
stored valuations) and the profile page (display names, language, date style). Issue 25, point 2."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import ActivityKind
from tenants.accounts.models import User
from tests.crm.factories import ActivityFactory, TaskFactory
from tests.portfolios.factories import ContactFactory
from tests.web.test_dashboard import build_book

pytestmark = pytest.mark.django_db


def _names(html: str) -> list[str]:
    return re.findall(r'<a href="/crm/contacts/\d+/">([^<]+)</a>', html)


def test_clients_list_shows_aum_ytd_review_next_task_and_advisor_name(owner_client, advisor, firm):
    today = timezone.localdate()
    advisor.first_name, advisor.last_name = "Grace", "Hopper"
    advisor.save(update_fields=["first_name", "last_name"])
    build_book(advisor=advisor, count=1, today=today, tag="cl")
    html = owner_client.get("/crm/contacts/?q=Clientcl0").content.decode()
    row = html[html.index("<tbody>") :]
    row = row[row.index("Clientcl0") : row.index("</tr>")]
    assert "Grace Hopper" in row and "advisor@acme.test" not in row
    assert re.search(r'data-format="money">\$\d{1,3}(,\d{3})*\.\d{2}<', row), row  # AUM from the stored closes
    assert 'data-format="return">' in row  # YTD
    for header in ("AUM", "YTD return", "Last review", "Next task", "Advisor"):
        assert f">{header}<" in html, header


def test_clients_list_sorts_by_next_task_and_keeps_filters_in_links(owner_client, owner, firm):
    today = timezone.localdate()
    later = ContactFactory(first_name="Later", last_name="Zed", owner=owner, tags=["vip"])
    soon = ContactFactory(first_name="Soon", last_name="Young", owner=owner, tags=["vip"])
    ContactFactory(first_name="Never", last_name="Xavier", owner=owner, tags=["vip"])
    TaskFactory(subject="b", contact=later, owner=owner, due_date=today + timedelta(days=9))
    TaskFactory(subject="a", contact=soon, owner=owner, due_date=today + timedelta(days=2))
    ActivityFactory(kind=ActivityKind.MEETING, subject="Review", contact=later, owner=owner)
    html = owner_client.get("/crm/contacts/?tag=vip&sort=next_task").content.decode()
    assert _names(html) == ["Soon Young", "Later Zed", "Never Xavier"]  # no task: last
    assert 'href="?tag=vip&amp;sort=-next_task"' in html and 'aria-sort="ascending"' in html
    html = owner_client.get("/crm/contacts/?tag=vip&sort=-next_task").content.decode()
    assert _names(html) == ["Later Zed", "Soon Young", "Never Xavier"]  # still last the other way
    html = owner_client.get("/crm/contacts/?tag=vip&sort=last_review").content.decode()
    assert _names(html)[0] == "Later Zed"
    html = owner_client.get("/crm/contacts/?tag=vip&sort=password").content.decode()  # unknown: default order
    assert _names(html) == ["Never Xavier", "Soon Young", "Later Zed"]


def test_column_choice_is_remembered_per_user(owner_client, advisor_client, owner, advisor, firm):
    ContactFactory(first_name="Shown", last_name="Both", owner=advisor)
    response = owner_client.post("/crm/contacts/columns/", {"columns": ["email", "aum", "nonsense"], "next": "tag=x"})
    assert response.status_code == 302 and response["Location"] == "/crm/contacts/?tag=x"
    owner.refresh_from_db()
    assert owner.table_columns == {"clients": ["email", "aum"]}
    html = owner_client.get("/crm/contacts/").content.decode()
    assert ">E-mail<" in html and ">AUM<" in html and ">Next task<" not in html
    other = advisor_client.get("/crm/contacts/").content.decode()  # someone else keeps the default
    assert ">Next task<" in other and ">E-mail<" not in other
    owner_client.post("/crm/contacts/columns/", {"columns": []})
    owner.refresh_from_db()
    assert owner.table_columns == {"clients": ["email", "aum"]}  # nothing chosen: nothing changed


def test_clients_list_query_count_is_pinned(owner_client, advisor, firm, django_assert_num_queries):
    today = timezone.localdate()
    build_book(advisor=advisor, count=3, today=today, tag="pin")
    owner_client.get("/crm/contacts/")
    # Pinned on purpose (issue 25): session, user, COUNT, the page (last activity, review and next
    # task aggregated in it), the page's portfolios, their summary fingerprints (summaries warm in
    # the cache), unread notifications, and the schema switch. The same for 3 rows as for 50
    # (tests/web/test_dashboard.py compares 1 and 7 books).
    with django_assert_num_queries(PINNED_CLIENTS_LIST_QUERIES):
        assert owner_client.get("/crm/contacts/").status_code == 200


PINNED_CLIENTS_LIST_QUERIES = 8


def test_profile_sets_the_display_name_shown_in_owner_columns(advisor_client, owner_client, advisor, firm):
    ContactFactory(first_name="Owned", last_name="Client", owner=advisor)
    response = advisor_client.post(
        "/accounts/profile/", {"first_name": " Ada ", "last_name": "Lovelace", "locale": "en_GB", "date_format": "iso"}
    )
    assert response.status_code == 302
    advisor.refresh_from_db()
    assert (advisor.first_name, advisor.last_name, advisor.locale, advisor.date_format) == (
        "Ada",
        "Lovelace",
        "en_GB",
        "iso",
    )
    html = owner_client.get("/crm/contacts/?q=Owned").content.decode()
    assert "Ada Lovelace" in html and "advisor@acme.test" not in html[html.index("<table") :]


def test_profile_refuses_unknown_choices_and_keeps_the_input(advisor_client, advisor, firm):
    response = advisor_client.post(
        "/accounts/profile/", {"first_name": "Kept", "last_name": "", "locale": "xx_XX", "date_format": "iso"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Kept"' in html and 'aria-invalid="true"' in html
    advisor.refresh_from_db()
    assert advisor.first_name != "Kept" and advisor.date_format == ""


def test_profile_changes_only_the_signed_in_person(advisor_client, owner, firm):
    advisor_client.post(
        "/accounts/profile/", {"first_name": "Me", "last_name": "Only", "locale": "", "date_format": ""}
    )
    owner.refresh_from_db()
    assert owner.first_name != "Me"


def test_outsider_cannot_reach_the_clients_list_or_another_firms_columns(
    outsider_client, owner_client, owner, firm, other_firm
):
    ContactFactory(first_name="Secret", last_name="Acme", owner=owner)
    html = owner_client.get("/crm/contacts/").content.decode()
    assert "Secret Acme" in html
    html = outsider_client.get("/crm/contacts/").content.decode()  # at globex: their own list
    assert "Secret Acme" not in html
    outsider_client.post("/crm/contacts/columns/", {"columns": ["email"]})
    connection.set_tenant(firm)
    owner.refresh_from_db()
    assert owner.table_columns == {}
    assert not User.objects.filter(table_columns__clients=["email"]).exists()


def test_profile_page_needs_sign_in(anon_client):
    response = anon_client.get("/accounts/profile/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_deals_and_subscribers_lists_sort_by_url(owner_client, owner, firm):
    from decimal import Decimal

    from tests.crm.factories import DealFactory, SubscriberFactory

    for title, amount in (("Small", "10"), ("Large", "90000"), ("Middle", "500")):
        DealFactory(title=f"Sorted {title}", amount=Decimal(amount), owner=owner)
    html = owner_client.get("/crm/deals/?q=Sorted&sort=-amount").content.decode()
    titles = re.findall(r'<a href="/crm/deals/\d+/">Sorted (\w+)</a>', html)
    assert titles == ["Large", "Middle", "Small"] and 'aria-sort="descending"' in html
    assert "$90,000.00" in html
    for email in ("b@example.com", "c@example.com", "a@example.com"):
        SubscriberFactory(email=email)
    html = owner_client.get("/crm/newsletter/?sort=-email").content.decode()
    shown = re.findall(r"<td>([abc]@example\.com)</td>", html)
    assert shown == ["c@example.com", "b@example.com", "a@example.com"]
