"""Isolation between firms and the advisor's book, for every CRM resource; each denial beside its
positive control."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from crm.models import Campaign, Contact, ImportJob

from .factories import ActivityFactory, CompanyFactory, ContactFactory, DealFactory, SubscriberFactory, TaskFactory

API = "/api/v1"

# resource -> (factory making one row owned by ``owner``, url of the API resource)
RESOURCES = {
    "contacts": lambda owner: ContactFactory(owner=owner),
    "companies": lambda owner: CompanyFactory(owner=owner),
    "deals": lambda owner: DealFactory(owner=owner),
    "activities": lambda owner: ActivityFactory(owner=owner),
    "newsletter/subscribers": lambda owner: SubscriberFactory(),
    "newsletter/campaigns": lambda owner: Campaign.objects.create(subject="Q3 letter", body="Hello"),
    "imports": lambda owner: ImportJob.objects.create(kind="contacts", created_by=owner, headers=["a"], rows=[]),
}


@pytest.mark.parametrize("resource", RESOURCES)
def test_owner_sees_the_firms_row_but_another_firm_does_not(resource, owner_client, outsider_client, owner):
    obj = RESOURCES[resource](owner)
    assert owner_client.get(f"{API}/{resource}/{obj.pk}/").status_code == 200
    assert owner_client.get(f"{API}/{resource}/").json()["count"] == 1
    other = outsider_client.get(f"{API}/{resource}/{obj.pk}/")
    assert other.status_code == 404
    assert outsider_client.get(f"{API}/{resource}/").json()["count"] == 0


@pytest.mark.parametrize("resource", ["contacts", "companies", "deals", "activities"])
def test_other_firm_cannot_change_or_delete(resource, owner_client, outsider_client, owner):
    obj = RESOURCES[resource](owner)
    assert outsider_client.patch(f"{API}/{resource}/{obj.pk}/", {}, content_type="application/json").status_code == 404
    assert outsider_client.delete(f"{API}/{resource}/{obj.pk}/").status_code == 404
    assert owner_client.patch(f"{API}/{resource}/{obj.pk}/", {}, content_type="application/json").status_code == 200


def test_api_key_of_one_firm_is_refused_at_another(firm, other_firm, api_key_for, anon_client):
    from tests.conftest import FirmClient

    ContactFactory()
    acme_key = api_key_for(firm, "read")
    ok = anon_client.get(f"{API}/contacts/", HTTP_X_API_KEY=acme_key)
    assert ok.status_code == 200 and ok.json()["count"] == 1
    globex = FirmClient(other_firm)
    assert globex.get(f"{API}/contacts/", HTTP_X_API_KEY=acme_key).status_code == 401
    connection.set_tenant(firm)


def test_read_key_reads_but_cannot_write_and_write_key_can(firm, api_key_for, anon_client):
    read, write = api_key_for(firm, "read"), api_key_for(firm, "write")
    body = {"first_name": "Key"}
    r = anon_client.post(f"{API}/contacts/", body, content_type="application/json", HTTP_X_API_KEY=read)
    assert r.status_code == 403
    r = anon_client.post(f"{API}/contacts/", body, content_type="application/json", HTTP_X_API_KEY=write)
    assert r.status_code == 201 and r.json()["owner"] is None


def test_client_record_isolated_between_firms(owner_client, outsider_client):
    c = ContactFactory()
    assert owner_client.get(f"{API}/clients/{c.pk}/").status_code == 200
    assert outsider_client.get(f"{API}/clients/{c.pk}/").status_code == 404


# --- the advisor's book ------------------------------------------------------------------------------


def test_advisor_sees_own_and_shared_contacts_only(advisor_client, advisor, advisor2):
    mine = ContactFactory(owner=advisor, first_name="Mine")
    shared = ContactFactory(owner=advisor2, first_name="Shared")
    shared.shared_with.add(advisor)
    hidden = ContactFactory(owner=advisor2, first_name="Hidden")
    names = {c["first_name"] for c in advisor_client.get(f"{API}/contacts/").json()["results"]}
    assert names == {"Mine", "Shared"}
    assert advisor_client.get(f"{API}/contacts/{mine.pk}/").status_code == 200
    assert advisor_client.get(f"{API}/contacts/{shared.pk}/").status_code == 200
    assert advisor_client.get(f"{API}/contacts/{hidden.pk}/").status_code == 404
    assert advisor_client.get(f"{API}/clients/{hidden.pk}/").status_code == 404
    assert advisor_client.get(f"{API}/clients/{mine.pk}/").status_code == 200


def test_advisor_sees_deals_and_activities_of_their_contacts(advisor_client, advisor, advisor2):
    mine = ContactFactory(owner=advisor)
    theirs = ContactFactory(owner=advisor2)
    d1 = DealFactory(contact=mine, owner=advisor2, title="On my client")
    d2 = DealFactory(contact=theirs, owner=advisor2, title="Not mine")
    a1 = ActivityFactory(contact=mine, owner=advisor2, subject="Seen")
    a2 = ActivityFactory(contact=theirs, owner=advisor2, subject="Unseen")
    assert {d["title"] for d in advisor_client.get(f"{API}/deals/").json()["results"]} == {"On my client"}
    assert advisor_client.get(f"{API}/deals/{d1.pk}/").status_code == 200
    assert advisor_client.get(f"{API}/deals/{d2.pk}/").status_code == 404
    assert advisor_client.get(f"{API}/activities/{a1.pk}/").status_code == 200
    assert advisor_client.get(f"{API}/activities/{a2.pk}/").status_code == 404


def test_advisor_sees_companies_of_their_contacts(advisor_client, advisor, advisor2):
    co_seen, co_hidden = CompanyFactory(owner=advisor2), CompanyFactory(owner=advisor2)
    ContactFactory(owner=advisor, company=co_seen)
    assert advisor_client.get(f"{API}/companies/{co_seen.pk}/").status_code == 200
    assert advisor_client.get(f"{API}/companies/{co_hidden.pk}/").status_code == 404


def test_advisor_cannot_change_others_contacts_but_can_change_their_own(advisor_client, advisor, advisor2):
    mine, hidden = ContactFactory(owner=advisor), ContactFactory(owner=advisor2)
    r = advisor_client.patch(f"{API}/contacts/{mine.pk}/", {"notes": "x"}, content_type="application/json")
    assert r.status_code == 200
    r = advisor_client.patch(f"{API}/contacts/{hidden.pk}/", {"notes": "x"}, content_type="application/json")
    assert r.status_code == 404
    r = advisor_client.post(f"{API}/contacts/{mine.pk}/merge/", {"loser": hidden.pk}, content_type="application/json")
    assert r.status_code == 404
    assert Contact.objects.filter(pk=hidden.pk).exists()


def test_advisor_is_refused_the_newsletter_api_as_the_newsletter_page(advisor_client, owner_client, viewer_client):
    """The newsletter is the firm's (decision 0001): 403 for advisors on the API as on the page."""
    subscriber = SubscriberFactory()
    campaign = Campaign.objects.create(subject="Q3 letter", body="Hello")
    assert owner_client.get(f"{API}/newsletter/subscribers/").json()["count"] == 1
    assert owner_client.get(f"{API}/newsletter/campaigns/").json()["count"] == 1
    assert viewer_client.get(f"{API}/newsletter/subscribers/{subscriber.pk}/").status_code == 200
    assert owner_client.get("/crm/newsletter/").status_code == 200
    assert advisor_client.get("/crm/newsletter/").status_code == 403
    for url in (
        f"{API}/newsletter/subscribers/",
        f"{API}/newsletter/subscribers/{subscriber.pk}/",
        f"{API}/newsletter/campaigns/",
        f"{API}/newsletter/campaigns/{campaign.pk}/",
    ):
        r = advisor_client.get(url)
        assert r.status_code == 403, url
        assert r.json()["error"]["code"] == "permission_denied"
        assert "Q3 letter" not in r.content.decode() and subscriber.email not in r.content.decode()
    r = advisor_client.post(
        f"{API}/newsletter/subscribers/", {"email": "x@example.com"}, content_type="application/json"
    )
    assert r.status_code == 403


def test_viewer_reads_everything_and_changes_nothing(viewer_client, advisor):
    c = ContactFactory(owner=advisor)
    assert viewer_client.get(f"{API}/contacts/{c.pk}/").status_code == 200
    r = viewer_client.patch(f"{API}/contacts/{c.pk}/", {"notes": "x"}, content_type="application/json")
    assert r.status_code == 403
    assert (
        viewer_client.post(f"{API}/contacts/", {"first_name": "n"}, content_type="application/json").status_code == 403
    )
    task = TaskFactory(owner=advisor)
    assert viewer_client.post(f"{API}/activities/{task.pk}/complete/").status_code == 403


def test_search_is_scoped_by_the_book(advisor_client, owner_client, advisor, advisor2):
    ContactFactory(owner=advisor, first_name="Zebulon", last_name="Mine")
    ContactFactory(owner=advisor2, first_name="Zebulon", last_name="Theirs")
    titles = {h["title"] for h in advisor_client.get(f"{API}/search/?q=zebulon").json()["results"]}
    assert titles == {"Zebulon Mine"}
    titles = {h["title"] for h in owner_client.get(f"{API}/search/?q=zebulon").json()["results"]}
    assert titles == {"Zebulon Mine", "Zebulon Theirs"}


def test_search_does_not_cross_firms(owner_client, outsider_client, other_firm, firm):
    ContactFactory(first_name="Quentin", last_name="Acme")
    with schema_context(other_firm.schema_name):
        ContactFactory(first_name="Quentin", last_name="Globex")
    assert {h["title"] for h in owner_client.get(f"{API}/search/?q=quentin").json()["results"]} == {"Quentin Acme"}
    assert {h["title"] for h in outsider_client.get(f"{API}/search/?q=quentin").json()["results"]} == {"Quentin Globex"}
