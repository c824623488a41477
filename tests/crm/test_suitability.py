"""Risk and suitability on the client: fields, KYC review dates, the task when a review falls due,
the page and the API (owner can, another firm cannot), and every change in the history."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from codex.history import object_history
from crm.models import Activity, ActivityKind, Contact
from crm.suitability import contact_suitability_update, kyc_review_tasks_open
from tests.crm.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_contact(firm, advisor):
    return ContactFactory(owner=advisor, lifecycle="client")


def test_suitability_is_saved_and_in_the_history(client_contact, advisor):
    today = timezone.localdate()
    contact_suitability_update(
        actor=advisor,
        contact=client_contact,
        risk_tolerance="moderate",
        objectives=["growth", "income", "growth"],
        time_horizon="long",
        kyc_status="verified",
        kyc_reviewed_on=today,
        kyc_review_due_on=today + timedelta(days=365),
    )
    client_contact.refresh_from_db()
    assert client_contact.objectives == ["growth", "income"]
    last = object_history(obj=client_contact)[-1]
    assert last.changes["risk_tolerance"] == ("", "moderate")
    assert last.changes["kyc_status"] == ("not_started", "verified")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"risk_tolerance": "yolo"}, "risk_tolerance"),
        ({"objectives": ["growth", "lottery"]}, "objectives"),
        ({"kyc_status": "verified"}, "kyc_reviewed_on"),
        ({"kyc_reviewed_on": date(2026, 1, 10), "kyc_review_due_on": date(2026, 1, 1)}, "kyc_review_due_on"),
        ({"kyc_reviewed_on": date(2999, 1, 1)}, "kyc_reviewed_on"),
    ],
)
def test_bad_suitability_is_refused_naming_the_field(client_contact, advisor, fields, field):
    with pytest.raises(ValidationError) as exc:
        contact_suitability_update(actor=advisor, contact=client_contact, **fields)
    assert field in exc.value.message_dict
    client_contact.refresh_from_db()
    assert client_contact.risk_tolerance == "" and client_contact.kyc_status == "not_started"


def test_the_database_refuses_a_review_due_before_the_last_review(client_contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.filter(pk=client_contact.pk).update(
            kyc_reviewed_on=date(2026, 2, 1), kyc_review_due_on=date(2026, 1, 1)
        )


def test_a_due_review_opens_one_task_for_the_owner(client_contact, advisor):
    Contact.objects.filter(pk=client_contact.pk).update(kyc_review_due_on=date(2026, 3, 1))
    not_yet = ContactFactory(owner=advisor, lifecycle="client", kyc_review_due_on=date(2026, 4, 1))
    assert kyc_review_tasks_open(on=date(2026, 3, 1)) == 1
    kyc_review_tasks_open(on=date(2026, 3, 2))  # again the next day: still one open task
    tasks = Activity.objects.filter(kind=ActivityKind.TASK, contact=client_contact, owner=advisor)
    assert tasks.count() == 1 and tasks.get().due_date == date(2026, 3, 1)
    assert not Activity.objects.filter(contact=not_yet).exists()


def test_owner_edits_suitability_on_the_page(client_contact, owner_client):
    page = owner_client.get(f"/crm/contacts/{client_contact.pk}/suitability/")
    assert page.status_code == 200 and "Risk tolerance" in page.content.decode()
    response = owner_client.post(
        f"/crm/contacts/{client_contact.pk}/suitability/",
        {
            "risk_tolerance": "conservative",
            "objectives": ["preservation"],
            "time_horizon": "short",
            "kyc_status": "pending",
        },
    )
    assert response.status_code == 302
    client_contact.refresh_from_db()
    assert client_contact.risk_tolerance == "conservative" and client_contact.objectives == ["preservation"]
    detail = owner_client.get(f"/crm/contacts/{client_contact.pk}/").content.decode()
    assert "Conservative" in detail and "Pending" in detail


def test_api_reads_and_changes_suitability(client_contact, owner_client):
    url = f"/api/v1/contacts/{client_contact.pk}/suitability/"
    assert owner_client.get(url).json()["kyc_status"] == "not_started"
    changed = owner_client.patch(url, json.dumps({"time_horizon": "medium"}), content_type="application/json")
    assert changed.status_code == 200 and changed.json()["time_horizon"] == "medium"
    bad = owner_client.patch(url, json.dumps({"time_horizon": "forever"}), content_type="application/json")
    assert bad.status_code == 400 and "time_horizon" in bad.json()["error"]["details"]


def test_viewer_cannot_change_suitability(client_contact, viewer_client):
    url = f"/api/v1/contacts/{client_contact.pk}/suitability/"
    response = viewer_client.patch(url, json.dumps({"time_horizon": "medium"}), content_type="application/json")
    assert response.status_code in (403, 404)


def test_outsider_cannot_reach_suitability(client_contact, outsider_client):
    assert outsider_client.get(f"/api/v1/contacts/{client_contact.pk}/suitability/").status_code == 404
    assert outsider_client.get(f"/crm/contacts/{client_contact.pk}/suitability/").status_code == 404
