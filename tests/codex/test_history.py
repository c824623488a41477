"""Change history (django-pghistory triggers): who, when, before/after per field, request id; in
the firm's schema; append-only; retention; the History tab, the API and the owner's CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.history import history_purge, object_history
from crm import services as crm_services
from crm.models import Contact
from portfolios import services as portfolio_services
from portfolios.models import Portfolio
from tests.crm.factories import ContactFactory
from tests.portfolios.factories import PortfolioFactory

pytestmark = pytest.mark.django_db


def _event_model(model):
    from django.apps import apps

    return apps.get_model(model._meta.app_label, f"{model.__name__}Event")


@pytest.fixture
def contact(firm, advisor):
    return ContactFactory(owner=advisor, email="ada@example.com")


def test_an_api_change_records_who_what_and_the_request(contact, client, api_key_for, firm):
    raw = api_key_for(firm, "write")
    response = client.patch(
        f"/api/v1/contacts/{contact.pk}/",
        json.dumps({"last_name": "Byron"}),
        content_type="application/json",
        HTTP_HOST="api.localhost",
        HTTP_X_API_KEY=raw,
        HTTP_X_REQUEST_ID="req-history-1",
    )
    assert response.status_code == 200, response.content
    last = object_history(obj=contact)[-1]
    assert last.action == "update"
    assert last.changes["last_name"] == (contact.last_name, "Byron")
    assert set(last.changes) <= {"last_name", "updated_at"}
    assert last.api_key == raw.split("_")[1]  # the key's public prefix, never its secret
    assert last.request_id == "req-history-1"


def test_a_page_change_records_the_user(contact, advisor_client, advisor):
    response = advisor_client.post(
        f"/crm/contacts/{contact.pk}/edit/",
        {"first_name": "Ada", "last_name": "King", "lifecycle": "client", "email": "ada@example.com"},
    )
    assert response.status_code in (200, 302)
    history = object_history(obj=contact)
    changed = [e for e in history if "last_name" in e.changes]
    assert changed and changed[-1].changes["last_name"][1] == "King"
    assert changed[-1].user_id == advisor.pk


def test_insert_update_delete_are_all_recorded_by_the_database(contact, firm):
    # A write that no service makes (raw SQL) is recorded too: the trigger sees every path.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_contact SET phone = %s WHERE id = %s", ["+44 1", contact.pk])
    contact_id = contact.pk
    contact.delete()
    events = _event_model(Contact).objects.filter(pgh_obj_id=contact_id).order_by("pgh_id")
    assert [e.pgh_label for e in events] == ["insert", "update", "delete"]
    assert events[1].phone == "+44 1"


def test_history_lives_in_the_firms_schema(contact, firm, other_firm):
    assert _event_model(Contact).objects.filter(pgh_obj_id=contact.pk).exists()
    with schema_context(other_firm.schema_name):
        assert not _event_model(Contact).objects.filter(first_name=contact.first_name, last_name="Test").exists()


@pytest.mark.parametrize("statement", ["UPDATE {table} SET first_name = 'forged'", "DELETE FROM {table}"])
def test_history_is_append_only_for_the_apps_role(contact, statement):
    table = _event_model(Contact)._meta.db_table
    with pytest.raises(DatabaseError, match="append_only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(table=table))
    assert _event_model(Contact).objects.filter(pgh_obj_id=contact.pk).count() == 1


def test_retention_purges_only_events_older_than_the_setting(contact, settings):
    model = _event_model(Contact)
    assert model.objects.filter(pgh_obj_id=contact.pk).count() == 1
    settings.CODEX_HISTORY_RETENTION_DAYS = 30
    assert history_purge(now=timezone.now() + timedelta(days=29))[model._meta.label] == 0
    assert history_purge(now=timezone.now() + timedelta(days=31))[model._meta.label] >= 1
    assert not model.objects.filter(pgh_obj_id=contact.pk).exists()
    # and the append-only guard is back afterwards
    ContactFactory(first_name="Later")
    with pytest.raises(DatabaseError, match="append_only"), transaction.atomic():
        model.objects.all().delete()


def test_default_retention_is_seven_years(settings):
    assert settings.CODEX_HISTORY_RETENTION_DAYS >= 7 * 365


@pytest.fixture
def portfolio(firm, advisor, contact):
    return PortfolioFactory(advisor=advisor, client=contact)


def test_portfolio_and_transaction_history_api(portfolio, advisor_client, advisor):
    txn = portfolio_services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=date(2025, 1, 2), amount=Decimal("100"), created_by=advisor
    )
    portfolio_services.transaction_update(txn=txn, amount=Decimal("150"))
    body = advisor_client.get(f"/api/v1/portfolios/{portfolio.pk}/transactions/{txn.pk}/history/").json()
    assert [e["action"] for e in body["results"]] == ["insert", "update"]
    amount = [c for c in body["results"][1]["changes"] if c["field"] == "amount"]
    assert len(amount) == 1 and Decimal(amount[0]["before"]) == 100 and Decimal(amount[0]["after"]) == 150
    page = advisor_client.get(f"/api/v1/portfolios/{portfolio.pk}/history/").json()
    assert page["results"][0]["action"] == "insert"


def test_contact_history_api_and_page_for_the_owner(contact, owner_client):
    api = owner_client.get(f"/api/v1/contacts/{contact.pk}/history/")
    assert api.status_code == 200 and api.json()["results"][0]["action"] == "insert"
    page = owner_client.get(f"/crm/contacts/{contact.pk}/history/")
    assert page.status_code == 200 and "History of" in page.content.decode()
    assert "ada@example.com" in page.content.decode()


def test_outsider_cannot_read_another_firms_history(contact, portfolio, outsider_client):
    assert outsider_client.get(f"/api/v1/contacts/{contact.pk}/history/").status_code == 404
    assert outsider_client.get(f"/api/v1/portfolios/{portfolio.pk}/history/").status_code == 404
    assert outsider_client.get(f"/crm/contacts/{contact.pk}/history/").status_code == 404


def test_an_advisor_cannot_read_the_history_of_a_record_outside_their_book(firm, advisor2, advisor_client):
    theirs = ContactFactory(owner=advisor2)
    assert advisor_client.get(f"/api/v1/contacts/{theirs.pk}/history/").status_code in (403, 404)


def test_owner_exports_the_trail_as_csv_for_a_date_range(contact, owner_client, advisor_client):
    today = timezone.localdate()
    response = owner_client.get("/history/export/", {"start": today.isoformat(), "end": today.isoformat()})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    mine = [r for r in rows if r["record_type"] == "crm.Contact" and r["record_id"] == str(contact.pk)]
    assert {r["field"] for r in mine} >= {"first_name", "email"}
    assert all(r["action"] == "insert" for r in mine)
    yesterday = today - timedelta(days=1)
    earlier = owner_client.get("/history/export/", {"start": yesterday.isoformat(), "end": yesterday.isoformat()})
    assert str(contact.pk) not in [
        r["record_id"] for r in csv.DictReader(io.StringIO(b"".join(earlier.streaming_content).decode()))
    ]
    assert (
        advisor_client.get("/history/export/", {"start": today.isoformat(), "end": today.isoformat()}).status_code
        == 403
    )


def test_user_role_changes_are_in_the_history(firm, owner):
    from tenants.accounts import services as account_services
    from tenants.accounts.models import User

    # A user made in this test: the session's users may come from a reused database made before
    # the history's triggers, with no insert event to give the "before".
    member = User.objects.create_user("history-member@acme.test", "x-long-password-1", role="advisor")
    account_services.user_change_role(actor=owner, user=member, role="admin", tenant=firm)
    last = object_history(obj=User.objects.get(pk=member.pk))[-1]
    assert last.changes.get("role") == ("advisor", "admin")
    assert "password" not in last.changes


def test_crm_service_writes_are_recorded(firm, advisor, contact):
    crm_services.contact_update(actor=advisor, contact=contact, phone="+1 555")
    assert object_history(obj=contact)[-1].changes["phone"] == ("", "+1 555")


def test_portfolio_rename_is_recorded(portfolio):
    Portfolio.objects.filter(pk=portfolio.pk).update(name="Renamed")
    assert object_history(obj=portfolio)[-1].changes["name"][1] == "Renamed"


def test_the_daily_purge_task_runs_in_the_firms_schema(contact, settings):
    from codex.tasks import history_purge_firm

    settings.CODEX_HISTORY_RETENTION_DAYS = 3650
    assert history_purge_firm.run() == {"schema": "firm_acme", "deleted": 0}
    assert _event_model(Contact).objects.filter(pgh_obj_id=contact.pk).exists()
    settings.CODEX_HISTORY_RETENTION_DAYS = -1  # everything is older than "tomorrow"
    assert history_purge_firm.run()["deleted"] >= 1
    assert not _event_model(Contact).objects.filter(pgh_obj_id=contact.pk).exists()


def test_portfolio_and_transaction_history_pages(portfolio, advisor_client, advisor, viewer_client):
    txn = portfolio_services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=date(2025, 1, 2), amount=Decimal("100"), created_by=advisor
    )
    page = advisor_client.get(f"/portfolios/{portfolio.pk}/history/").content.decode()
    assert "History of" in page and portfolio.name in page
    txn_page = viewer_client.get(f"/portfolios/{portfolio.pk}/transactions/{txn.pk}/history/")
    assert txn_page.status_code == 200 and "deposit" in txn_page.content.decode()
    detail = advisor_client.get(f"/portfolios/{portfolio.pk}/").content.decode()
    assert f"/portfolios/{portfolio.pk}/history/" in detail
    assert f"/portfolios/{portfolio.pk}/transactions/{txn.pk}/history/" in detail
