"""Issue 25 point 2 for the remaining lists: the ledger, tasks, notifications and the audit log sort,
filter and page on the server with shareable URLs, their query counts do not grow with rows, and
another firm's rows never appear. (Alerts: tests/alerts; webhook deliveries: tests/webhooks.)"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.notifications.models import Notification, NotificationKind
from portfolios import services as portfolio_services
from tenants.services import audit_record
from tests.crm.factories import TaskFactory
from tests.portfolios.factories import ContactFactory, PortfolioFactory

pytestmark = pytest.mark.django_db


def order_of(html: str, markers: list[str]) -> list[str]:
    """The markers in the order they appear on the page (each must appear)."""
    missing = [m for m in markers if m not in html]
    assert not missing, f"not on the page: {missing}"
    return sorted(markers, key=html.index)


def queries_for(client, url: str) -> int:
    client.get(url)  # warm the session and the firm caches
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


# --- the ledger (a portfolio's transactions) ----------------------------------------------------------

DAY = date(2025, 6, 2)


@pytest.fixture
def ledger(firm, advisor):
    portfolio = PortfolioFactory(name="Ledger test", advisor=advisor, client=ContactFactory(owner=advisor))

    def deposit(n: int, *, day: date = DAY, kind: str = "deposit") -> None:
        portfolio_services.transaction_record(
            portfolio=portfolio,
            kind=kind,
            trade_date=day,
            amount=str(100 + n * 10),
            note=f"dep-{n:02d}",
            today=date(2025, 12, 31),
        )

    return portfolio, deposit


def test_ledger_sorts_by_amount_both_ways_and_pages(advisor_client, ledger):
    portfolio, deposit = ledger
    for n in range(12):
        deposit(n)
    url = f"/portfolios/{portfolio.pk}/"
    up = advisor_client.get(url + "?sort=amount&per_page=10").content.decode()
    assert order_of(up, ["dep-00", "dep-01", "dep-09"]) == ["dep-00", "dep-01", "dep-09"]
    assert "dep-10" not in up and 'aria-sort="ascending"' in up
    down = advisor_client.get(url + "?sort=-amount&per_page=10").content.decode()
    assert order_of(down, ["dep-11", "dep-10", "dep-02"]) == ["dep-11", "dep-10", "dep-02"]
    assert "dep-01" not in down
    second = advisor_client.get(url + "?sort=amount&per_page=10&page=2").content.decode()
    assert order_of(second, ["dep-10", "dep-11"]) == ["dep-10", "dep-11"] and "dep-00" not in second
    # The pager keeps the sort (shareable URL).
    assert re.search(r'href="\?[^"]*sort=amount[^"]*page=2', up)


def test_ledger_filters_by_kind_and_dates_and_names_a_bad_date(advisor_client, ledger):
    portfolio, deposit = ledger
    deposit(1)
    deposit(2, day=DAY + timedelta(days=5))
    deposit(3, kind="withdrawal")
    url = f"/portfolios/{portfolio.pk}/"
    kinds = advisor_client.get(url + "?kind=withdrawal").content.decode()
    assert "dep-03" in kinds and "dep-01" not in kinds and "dep-02" not in kinds
    later = advisor_client.get(url + f"?date_from={(DAY + timedelta(days=1)).isoformat()}").content.decode()
    assert "dep-02" in later and "dep-01" not in later and "dep-03" not in later
    bad = advisor_client.get(url + "?date_from=31.31.2025&kind=deposit").content.decode()
    assert 'id="filter_date_from_error"' in bad and "Enter a valid date" in bad
    assert 'value="31.31.2025"' in bad  # what was typed is kept
    assert "dep-01" in bad and "dep-03" not in bad  # the valid filter still applies
    backwards = advisor_client.get(url + "?date_from=2025-07-01&date_to=2025-06-01").content.decode()
    assert "The end date is before the start date." in backwards


def test_ledger_query_count_does_not_grow_with_rows(advisor_client, ledger):
    portfolio, deposit = ledger
    deposit(0)
    deposit(1)
    url = f"/portfolios/{portfolio.pk}/?sort=-amount"
    few = queries_for(advisor_client, url)
    for n in range(2, 14):
        deposit(n)
    assert queries_for(advisor_client, url) == few


def test_another_firm_never_sees_the_ledger(ledger, outsider_client):
    portfolio, deposit = ledger
    deposit(1)
    response = outsider_client.get(f"/portfolios/{portfolio.pk}/?sort=amount")
    assert response.status_code == 404 and b"dep-01" not in response.content


# --- tasks --------------------------------------------------------------------------------------------


def test_tasks_sort_by_subject_page_and_filter(owner_client, owner):
    today = timezone.localdate()
    for n in range(12):
        TaskFactory(owner=owner, subject=f"task-{n:02d}", due_date=today + timedelta(days=30 - n))
    TaskFactory(owner=owner, subject="undated-task", due_date=None)
    TaskFactory(owner=owner, subject="late-task", due_date=today - timedelta(days=3))
    by_due = owner_client.get("/crm/tasks/").content.decode()
    # Default: later or undated, soonest due first, undated last; the overdue one only in its card.
    assert order_of(by_due, ["task-11", "task-00", "undated-task"]) == ["task-11", "task-00", "undated-task"]
    down = owner_client.get("/crm/tasks/?sort=-subject&per_page=10").content.decode()
    assert order_of(down, ["undated-task", "task-11", "task-04"]) == ["undated-task", "task-11", "task-04"]
    assert "task-02" not in down  # the 11th row
    second = owner_client.get("/crm/tasks/?sort=-subject&per_page=10&page=2").content.decode()
    assert order_of(second, ["task-02", "task-00"]) == ["task-02", "task-00"] and "task-03" not in second
    words = owner_client.get("/crm/tasks/?q=task-0").content.decode()
    table = words[words.index('id="tasks-h"') :]
    assert "task-05" in table and "task-11" not in table and "undated-task" not in table
    overdue = owner_client.get("/crm/tasks/?when=overdue").content.decode()
    table = overdue[overdue.index('id="tasks-h"') :]
    assert "late-task" in table and "task-00" not in table


def test_done_tasks_are_listed_with_when_they_were_done(owner_client, owner):
    TaskFactory(owner=owner, subject="finished-task", completed_at=timezone.now())
    TaskFactory(owner=owner, subject="open-task")
    done = owner_client.get("/crm/tasks/?when=done").content.decode()
    table = done[done.index('id="tasks-h"') :]
    assert "finished-task" in table and "open-task" not in table


def test_tasks_query_count_does_not_grow_with_rows(owner_client, owner):
    today = timezone.localdate()
    TaskFactory(owner=owner, due_date=today + timedelta(days=3), contact=ContactFactory(owner=owner))
    url = "/crm/tasks/?when=open&sort=contact"
    few = queries_for(owner_client, url)
    for n in range(9):
        TaskFactory(owner=owner, due_date=today + timedelta(days=n), contact=ContactFactory(owner=owner))
    assert queries_for(owner_client, url) == few


def test_tasks_of_another_member_or_firm_never_appear(
    owner_client, outsider_client, owner, advisor, outsider, other_firm
):
    TaskFactory(owner=advisor, subject="advisor-task")
    with schema_context(other_firm.schema_name):
        TaskFactory(owner=outsider, subject="globex-task")
    TaskFactory(owner=owner, subject="owner-task")
    mine = owner_client.get("/crm/tasks/?when=open").content.decode()
    assert "owner-task" in mine and "advisor-task" not in mine and "globex-task" not in mine
    theirs = outsider_client.get("/crm/tasks/?when=open").content.decode()
    assert "globex-task" in theirs and "owner-task" not in theirs


# --- notifications ------------------------------------------------------------------------------------


def notice(user, n: int, *, kind=NotificationKind.IMPORT, read: bool = False) -> Notification:
    now = timezone.now()
    return Notification.objects.create(
        recipient=user,
        kind=kind,
        title=f"note-{n:02d}",
        created_at=now - timedelta(minutes=n),
        read_at=now if read else None,
    )


def test_notifications_sort_page_and_filter(owner_client, owner):
    for n in range(12):
        notice(owner, n, kind=NotificationKind.ALERT if n % 2 else NotificationKind.IMPORT, read=n >= 10)
    newest = owner_client.get("/notifications/?per_page=10").content.decode()
    assert order_of(newest, ["note-00", "note-01", "note-09"]) == ["note-00", "note-01", "note-09"]
    assert "note-10" not in newest
    oldest = owner_client.get("/notifications/?sort=created&per_page=10").content.decode()
    assert order_of(oldest, ["note-11", "note-10", "note-02"]) == ["note-11", "note-10", "note-02"]
    second = owner_client.get("/notifications/?sort=created&per_page=10&page=2").content.decode()
    assert order_of(second, ["note-01", "note-00"]) == ["note-01", "note-00"] and "note-11" not in second
    alerts = owner_client.get("/notifications/?kind=alert").content.decode()
    assert "note-01" in alerts and "note-00" not in alerts
    unread = owner_client.get("/notifications/?state=unread").content.decode()
    assert "note-09" in unread and "note-10" not in unread
    read = owner_client.get("/notifications/?state=read").content.decode()
    assert "note-10" in read and "note-09" not in read
    bad = owner_client.get("/notifications/?kind=nonsense").content.decode()
    assert 'id="filter_kind_error"' in bad and "note-00" in bad


def test_notifications_query_count_does_not_grow_with_rows(owner_client, owner):
    notice(owner, 1)
    few = queries_for(owner_client, "/notifications/?sort=kind")
    for n in range(2, 12):
        notice(owner, n)
    assert queries_for(owner_client, "/notifications/?sort=kind") == few


def test_notifications_of_another_member_or_firm_never_appear(owner_client, outsider_client, owner, advisor):
    notice(advisor, 1)
    assert "note-01" not in owner_client.get("/notifications/").content.decode()
    notice(owner, 2)
    assert "note-02" in owner_client.get("/notifications/").content.decode()
    assert "note-02" not in outsider_client.get("/notifications/").content.decode()


# --- the audit log ------------------------------------------------------------------------------------


def test_audit_log_sorts_pages_and_filters(owner_client, firm, other_firm):
    for n in range(12):
        audit_record(action="team.invited" if n % 2 else "auth.signed_in", actor=f"actor-{n:02d}@x.test", tenant=firm)
    audit_record(action="team.invited", actor="actor-globex@x.test", tenant=other_firm)
    up = owner_client.get("/accounts/audit/?sort=actor&per_page=10").content.decode()
    assert order_of(up, ["actor-00", "actor-01", "actor-09"]) == ["actor-00", "actor-01", "actor-09"]
    assert "actor-10" not in up and "actor-globex" not in up
    second = owner_client.get("/accounts/audit/?sort=actor&per_page=10&page=2").content.decode()
    assert order_of(second, ["actor-10", "actor-11"]) == ["actor-10", "actor-11"] and "actor-globex" not in second
    team = owner_client.get("/accounts/audit/?action=team.").content.decode()
    assert "actor-01" in team and "actor-00" not in team
    who = owner_client.get("/accounts/audit/?actor=actor-0").content.decode()
    assert "actor-05" in who and "actor-11" not in who
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    future = owner_client.get(f"/accounts/audit/?date_from={tomorrow}").content.decode()
    assert "actor-00" not in future and "match these filters" in future


def test_audit_log_query_count_does_not_grow_with_rows(owner_client, firm):
    audit_record(action="auth.signed_in", actor="a@x.test", tenant=firm)
    few = queries_for(owner_client, "/accounts/audit/?sort=-actor")
    for n in range(10):
        audit_record(action="auth.signed_in", actor=f"a{n}@x.test", tenant=firm)
    assert queries_for(owner_client, "/accounts/audit/?sort=-actor") == few
