"""The CRM API: CRUD, actions, filters, errors, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from crm.models import Activity, Contact, Deal

from .factories import ActivityFactory, CompanyFactory, ContactFactory, DealFactory, TaskFactory, stage

API = "/api/v1"


def test_create_contact_and_read_it_back(owner_client, owner):
    r = owner_client.post(
        f"{API}/contacts/",
        {"first_name": "Grace", "last_name": "Hopper", "email": "Grace@Navy.mil", "tags": ["VIP", "Navy"]},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["email"] == "grace@navy.mil" and body["tags"] == ["vip", "navy"] and body["owner"] == owner.pk
    r = owner_client.get(f"{API}/contacts/{body['id']}/")
    assert r.status_code == 200 and r.json()["name"] == "Grace Hopper"


def test_duplicate_email_is_a_409_naming_the_field(owner_client):
    # a conflict with a stored contact (decision 0503), not malformed input
    ContactFactory(email="taken@example.com")
    r = owner_client.post(
        f"{API}/contacts/", {"first_name": "X", "email": "TAKEN@example.com"}, content_type="application/json"
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    assert "email" in r.json()["error"]["details"]


def test_missing_first_name_is_a_400(owner_client):
    r = owner_client.post(f"{API}/contacts/", {"last_name": "Only"}, content_type="application/json")
    assert r.status_code == 400 and "first_name" in r.json()["error"]["details"]


def test_contact_creation_past_the_plan_limit_is_402(owner_client, monkeypatch):
    from billing import entitlements
    from crm.services import contacts

    def full(*, tenant, resource, adding=1):
        raise entitlements.PlanLimitExceeded("full", limit="contacts", allowed=1, used=1)

    monkeypatch.setattr(contacts, "check_can_add", full)
    r = owner_client.post(f"{API}/contacts/", {"first_name": "Over"}, content_type="application/json")
    assert r.status_code == 402 and r.json()["error"]["code"] == "plan_limit_exceeded"


def test_contacts_list_filters_search_and_ordering(owner_client):
    ContactFactory(first_name="Ada", last_name="Zeta", lifecycle="client", tags=["vip"])
    ContactFactory(first_name="Bob", last_name="Alpha", lifecycle="lead")
    r = owner_client.get(f"{API}/contacts/?lifecycle=client")
    assert [c["first_name"] for c in r.json()["results"]] == ["Ada"]
    r = owner_client.get(f"{API}/contacts/?tag=VIP")
    assert [c["first_name"] for c in r.json()["results"]] == ["Ada"]
    r = owner_client.get(f"{API}/contacts/?search=alph")
    assert [c["first_name"] for c in r.json()["results"]] == ["Bob"]
    r = owner_client.get(f"{API}/contacts/?ordering=-last_name")
    assert [c["last_name"] for c in r.json()["results"]] == ["Zeta", "Alpha"]
    r = owner_client.get(f"{API}/contacts/?page_size=1")
    assert r.json()["count"] == 2 and len(r.json()["results"]) == 1 and r.json()["next"]


def _count_queries(client, url, django_assert_max_num_queries):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("contacts/", lambda owner, i: ContactFactory(owner=owner, company=CompanyFactory())),
        ("companies/", lambda owner, i: CompanyFactory(owner=owner)),
        ("deals/", lambda owner, i: DealFactory(owner=owner, contact=ContactFactory())),
        ("activities/", lambda owner, i: ActivityFactory(owner=owner, contact=ContactFactory())),
        ("tasks/?mine=true&due=due", lambda owner, i: TaskFactory(owner=owner)),
        (
            "newsletter/subscribers/",
            lambda owner, i: __import__("tests.crm.factories").crm.factories.SubscriberFactory(),
        ),
        (
            "newsletter/campaigns/",
            lambda owner, i: __import__("crm.models").models.Campaign.objects.create(subject="s", body="b"),
        ),
    ],
)
def test_list_query_count_does_not_grow_with_rows(owner_client, owner, url, make):
    from django.test.utils import CaptureQueriesContext

    for i in range(2):
        make(owner, i)
    owner_client.get(f"{API}/{url}")  # warm-up: first-request work (throttle keys, caches)
    with CaptureQueriesContext(connection) as few:
        r = owner_client.get(f"{API}/{url}")
        assert r.status_code == 200 and r.json()["count"] == 2
    for i in range(2, 12):
        make(owner, i)
    with CaptureQueriesContext(connection) as many:
        r = owner_client.get(f"{API}/{url}")
        assert r.status_code == 200 and r.json()["count"] == 12
    assert len(many) == len(few)


def test_contacts_list_query_count_is_pinned(owner_client, owner, django_assert_num_queries):
    for _ in range(5):
        ContactFactory(owner=owner)
    # session, user, 4 for throttling, count, page, shared_with prefetch, + savepoints of the test client
    from django.test.utils import CaptureQueriesContext

    owner_client.get(f"{API}/contacts/")  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        owner_client.get(f"{API}/contacts/")
    pinned = len(ctx)
    for _ in range(20):
        ContactFactory(owner=owner)
    with django_assert_num_queries(pinned):
        owner_client.get(f"{API}/contacts/")


def test_deal_move_action_and_history(owner_client):
    deal = DealFactory()
    r = owner_client.post(
        f"{API}/deals/{deal.pk}/move/", {"stage": stage("Won").pk, "reason": "signed"}, content_type="application/json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "won" and r.json()["stage_name"] == "Won"
    r = owner_client.post(f"{API}/deals/{deal.pk}/move/", {"stage": 999999}, content_type="application/json")
    assert r.status_code == 400 and "stage" in r.json()["error"]["details"]


def test_lost_without_reason_is_400(owner_client):
    deal = DealFactory()
    r = owner_client.post(f"{API}/deals/{deal.pk}/move/", {"stage": stage("Lost").pk}, content_type="application/json")
    assert r.status_code == 400 and "reason" in r.json()["error"]["details"]
    assert Deal.objects.get(pk=deal.pk).status == "open"


def test_create_deal_validates_money(owner_client):
    r = owner_client.post(
        f"{API}/deals/", {"title": "Big", "amount": "100.50", "currency": "chf"}, content_type="application/json"
    )
    assert r.status_code == 201, r.content
    assert r.json()["currency"] == "CHF" and r.json()["amount"] == "100.50" and r.json()["stage_name"] == "Lead"
    r = owner_client.post(f"{API}/deals/", {"title": "Bad", "amount": "-1"}, content_type="application/json")
    assert r.status_code == 400 and "amount" in r.json()["error"]["details"]


def test_tasks_mine_due_today_and_overdue(advisor_client, advisor, advisor2):
    today = dt.date.today()
    TaskFactory(owner=advisor, subject="today", due_date=today)
    TaskFactory(owner=advisor, subject="late", due_date=today - dt.timedelta(days=3))
    TaskFactory(owner=advisor, subject="later", due_date=today + dt.timedelta(days=3))
    TaskFactory(owner=advisor2, subject="not mine", due_date=today)
    r = advisor_client.get(f"{API}/tasks/?mine=true&due=today")
    assert [t["subject"] for t in r.json()["results"]] == ["today"]
    r = advisor_client.get(f"{API}/tasks/?mine=true&due=overdue")
    assert [t["subject"] for t in r.json()["results"]] == ["late"]
    r = advisor_client.get(f"{API}/tasks/?due=sometime")
    assert r.status_code == 400


def test_complete_task(owner_client, owner):
    task = TaskFactory(owner=owner)
    r = owner_client.post(f"{API}/activities/{task.pk}/complete/", {}, content_type="application/json")
    assert r.status_code == 200 and r.json()["is_done"] is True
    assert Activity.objects.get(pk=task.pk).completed_at is not None


def test_activity_due_date_only_on_tasks(owner_client):
    r = owner_client.post(
        f"{API}/activities/",
        {"kind": "call", "subject": "x", "due_date": "2026-01-01"},
        content_type="application/json",
    )
    assert r.status_code == 400 and "due_date" in r.json()["error"]["details"]


def test_merge_contacts_through_the_api(owner_client):
    a, b = ContactFactory(), ContactFactory()
    DealFactory(contact=b)
    r = owner_client.post(f"{API}/contacts/{a.pk}/merge/", {"loser": b.pk}, content_type="application/json")
    assert r.status_code == 200
    assert not Contact.objects.filter(pk=b.pk).exists() and Deal.objects.filter(contact=a).count() == 1


def test_pipeline_stages_managers_only(owner_client, advisor_client):
    assert advisor_client.get(f"{API}/pipeline-stages/").json()["count"] == 6
    r = advisor_client.post(
        f"{API}/pipeline-stages/", {"name": "Onboarding", "position": 5}, content_type="application/json"
    )
    assert r.status_code == 403
    r = owner_client.post(
        f"{API}/pipeline-stages/",
        {"name": "Onboarding", "position": 5, "probability": 90},
        content_type="application/json",
    )
    assert r.status_code == 201
    r = owner_client.post(f"{API}/pipeline-stages/", {"name": "onboarding"}, content_type="application/json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    assert r.json()["error"]["details"] == {"name": ["A stage with this name exists."]}


def test_export_contacts_csv(owner_client):
    ContactFactory(first_name="=cmd", email="csv@example.com")
    r = owner_client.get(f"{API}/contacts/export/")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    text = b"".join(r.streaming_content).decode()
    assert "csv@example.com" in text and "'=cmd" in text


def test_openapi_schema_of_the_crm_builds_without_warnings(firm):
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator(patterns=[path("api/v1/", include("crm.api_urls"))])
    schema = generator.get_schema(request=None, public=True)
    assert "/api/v1/clients/{id}/" in schema["paths"]
    assert "/api/v1/newsletter/campaigns/{id}/send/" in schema["paths"]
    assert "/api/v1/imports/{id}/commit/" in schema["paths"]
