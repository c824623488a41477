"""The latest activities of a caller's book (the dashboard's activity panel, decision 1000): the
same rows as ``activities_for`` in the same order, read as a union of the book's parts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from crm.access import activities_for
from crm.models import ActivityKind
from crm.selectors import activities_latest_for

from .factories import ActivityFactory, ContactFactory, DealFactory, TaskFactory

pytestmark = pytest.mark.django_db


def the_slow_way(user, limit):
    return list(
        activities_for(user)
        .exclude(kind=ActivityKind.TASK, completed_at__isnull=True)
        .order_by("-occurred_at", "-pk")[:limit]
    )


@pytest.fixture
def history(advisor, advisor2, owner):
    """Activities reaching ``advisor``'s book each way (owned, on a contact they own, on a
    contact shared with them, on a deal of theirs), and others that do not."""
    now = timezone.now()
    mine = ContactFactory(owner=advisor, first_name="Mine")
    shared = ContactFactory(owner=advisor2, first_name="Shared")
    shared.shared_with.add(advisor)
    theirs = ContactFactory(owner=advisor2, first_name="Theirs")
    deal = DealFactory(title="My deal", owner=advisor, contact=theirs)
    made = {}
    for i, (name, fields) in enumerate(
        [
            ("owned", {"owner": advisor, "contact": theirs}),
            ("contact", {"owner": advisor2, "contact": mine}),
            ("shared", {"owner": owner, "contact": shared}),
            ("deal", {"owner": advisor2, "deal": deal}),
            ("not mine", {"owner": advisor2, "contact": theirs}),
            ("nobody's", {"owner": owner}),
        ]
    ):
        made[name] = ActivityFactory(
            kind=ActivityKind.CALL, subject=name, occurred_at=now - timedelta(minutes=i), **fields
        )
    # an open task of the book is not something that happened; a done one is
    TaskFactory(subject="open task", owner=advisor, contact=mine, occurred_at=now)
    made["done task"] = TaskFactory(
        subject="done task", owner=advisor, contact=mine, occurred_at=now - timedelta(minutes=30), completed_at=now
    )
    return made


def test_the_advisor_sees_the_latest_of_their_book_in_order(history, advisor):
    got = activities_latest_for(advisor, limit=6)
    assert [a.subject for a in got] == ["owned", "contact", "shared", "deal", "done task"]
    assert got == the_slow_way(advisor, 6)
    assert [a.subject for a in activities_latest_for(advisor, limit=2)] == ["owned", "contact"]


def test_the_owner_sees_the_whole_firm(history, owner, advisor2):
    got = activities_latest_for(owner, limit=6)
    assert [a.subject for a in got] == ["owned", "contact", "shared", "deal", "not mine", "nobody's"]
    assert got == the_slow_way(owner, 6)
    assert activities_latest_for(advisor2, limit=10) == the_slow_way(advisor2, 10)


def test_another_firm_sees_none_of_it(history, other_firm, outsider):
    with schema_context(other_firm.schema_name):
        assert activities_latest_for(outsider, limit=6) == []


def test_queries_are_fixed_whatever_the_book(history, advisor, owner):
    for user, count in ((advisor, 2), (owner, 1)):
        with CaptureQueriesContext(connection) as ctx:
            got = activities_latest_for(user, limit=6)
            for a in got:  # contact and owner come with the rows
                str(a.contact), str(a.owner)
        assert len(ctx.captured_queries) == count
