"""The alerts page's table of alerts that fired: sorted, filtered and paged on the server (issue 25
point 2), query count flat, another firm's alerts never shown."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portfolios.alerts.models import AlertEvent, AlertNotification

from .test_evaluate import rule_for

pytestmark = pytest.mark.django_db
PAGE = "/portfolios/alerts/"
DAY = date(2026, 3, 2)


@pytest.fixture
def fire(firm, owner, aapl):
    rules = {kind: rule_for(owner, firm, aapl, kind=kind) for kind in ("price_above", "price_below")}

    def make(n: int, *, kind: str = "price_above", unread: bool = False) -> AlertEvent:
        event = AlertEvent.objects.create(
            rule=rules[kind],
            fired_at=timezone.now() - timedelta(hours=n),
            observed_on=DAY + timedelta(days=n),
            value=Decimal("100"),
            message=f"fired-{n:02d}",
        )
        AlertNotification.objects.create(event=event, recipient=owner, read_at=None if unread else timezone.now())
        return event

    return make


def order_of(html: str, markers: list[str]) -> list[str]:
    assert all(m in html for m in markers), [m for m in markers if m not in html]
    return sorted(markers, key=html.index)


def test_sorts_by_price_date_both_ways_and_pages(owner_client, fire):
    for n in range(12):
        fire(n)
    newest = owner_client.get(PAGE + "?per_page=10").content.decode()
    assert order_of(newest, ["fired-00", "fired-01", "fired-09"]) == ["fired-00", "fired-01", "fired-09"]
    assert "fired-10" not in newest
    by_date = owner_client.get(PAGE + "?sort=-observed&per_page=10").content.decode()
    assert order_of(by_date, ["fired-11", "fired-10", "fired-02"]) == ["fired-11", "fired-10", "fired-02"]
    second = owner_client.get(PAGE + "?sort=-observed&per_page=10&page=2").content.decode()
    assert order_of(second, ["fired-01", "fired-00"]) == ["fired-01", "fired-00"] and "fired-11" not in second


def test_filters_by_kind_state_and_price_dates(owner_client, fire):
    fire(1, kind="price_below")
    fire(2, unread=True)
    fire(3)
    below = owner_client.get(PAGE + "?kind=price_below").content.decode()
    assert "fired-01" in below and "fired-02" not in below
    unread = owner_client.get(PAGE + "?state=unread").content.decode()
    assert "fired-02" in unread and "fired-01" not in unread and "fired-03" not in unread
    read = owner_client.get(PAGE + "?state=read").content.decode()
    assert "fired-03" in read and "fired-02" not in read
    since = owner_client.get(PAGE + f"?date_from={(DAY + timedelta(days=3)).isoformat()}").content.decode()
    assert "fired-03" in since and "fired-02" not in since
    bad = owner_client.get(PAGE + "?kind=price_sideways").content.decode()
    assert 'id="filter_kind_error"' in bad and "fired-01" in bad


def test_query_count_does_not_grow_with_rows(owner_client, fire):
    fire(0)
    url = PAGE + "?sort=kind&state=read"
    owner_client.get(url)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(url)
    for n in range(1, 12):
        fire(n)
    with CaptureQueriesContext(connection) as many:
        assert "fired-11" in owner_client.get(url).content.decode()
    assert len(many) == len(few)


def test_another_firm_never_sees_the_alerts_that_fired(owner_client, outsider_client, fire):
    fire(1)
    assert "fired-01" in owner_client.get(PAGE).content.decode()
    assert "fired-01" not in outsider_client.get(PAGE + "?sort=message").content.decode()


def rules_table(html: str) -> str:
    start = html.index("alert rule")
    return html[start : html.index("</table>", start)]


def test_rules_table_sorts_and_pages_on_its_own(owner_client, firm, owner, aapl, fire):
    fire(1)  # two rules (price above, price below) and an event, so that both tables are on the page
    for n in range(26):
        rule_for(owner, firm, aapl, kind="daily_move_pct" if n == 0 else "price_above", threshold=str(50 + n))
    up = owner_client.get(PAGE + "?sort=rules.kind").content.decode()
    rules = rules_table(up)
    assert "28 alert rules" in up and rules.index("Daily move") < rules.index("Price at or above")
    assert "fired-01" in up  # the events' table keeps its default order and rows
    assert "rules_page=2" in up
    down = owner_client.get(PAGE + "?sort=-rules.kind").content.decode()
    assert "Daily move" not in rules_table(down) and "Price at or below" in rules_table(down)
    last = owner_client.get(PAGE + "?sort=-rules.kind&rules_page=2").content.decode()
    assert "Daily move" in rules_table(last) and "fired-01" in last


def test_another_firm_never_sees_the_rules(owner_client, outsider_client, firm, owner, aapl):
    rule_for(owner, firm, aapl, kind="daily_move_pct", threshold="7")
    assert "Daily move" in rules_table(owner_client.get(PAGE).content.decode())
    theirs = outsider_client.get(PAGE + "?sort=rules.kind").content.decode()
    assert "No alert rules yet." in theirs and "Daily move of at least (%) 7" not in theirs
