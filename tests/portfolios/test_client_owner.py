"""``Portfolio.client_owner``: the owner of the portfolio's client, kept by PostgreSQL triggers
(migration 0011, decision 1300). It is a cache behind the advisor's book (``access.book_filter``):
each kind of write that can change it is checked here against the contact's owner, and through
what the advisor then sees. The test firms are provisioned by cloning the template schema, so
these run on the triggers a new firm gets."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from crm import services as crm_services
from crm.models import Contact
from portfolios import services
from portfolios.access import portfolios_visible_to
from portfolios.models import Portfolio, PortfolioEvent
from tenants.accounts.models import Role
from tests.portfolios.factories import ContactFactory, PortfolioFactory

pytestmark = pytest.mark.django_db


def cached_owner(portfolio: Portfolio) -> int | None:
    return Portfolio.objects.values_list("client_owner_id", flat=True).get(pk=portfolio.pk)


def assert_cache_right() -> None:
    """Every portfolio of the firm: the cached owner is its client's owner."""
    wrong = [
        (p.pk, p.client_owner_id, p.client.owner_id if p.client else None)
        for p in Portfolio.objects.select_related("client")
        if p.client_owner_id != (p.client.owner_id if p.client else None)
    ]
    assert wrong == []


def visible_ids(user) -> set[int]:
    return set(portfolios_visible_to(user).values_list("pk", flat=True))


def test_new_portfolio_caches_its_clients_owner(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=advisor2)
    portfolio = services.portfolio_create(tenant=firm, actor=owner, name="Kept", advisor=advisor, client=client)
    assert cached_owner(portfolio) == advisor2.pk
    assert portfolio.pk in visible_ids(advisor2)  # their client's portfolio, though advised by another
    no_client = PortfolioFactory(advisor=advisor, client=None)
    assert cached_owner(no_client) is None


def test_bulk_created_portfolios_cache_the_owner_too(firm, advisor, advisor2):
    client = ContactFactory(owner=advisor2)
    Portfolio.objects.bulk_create([Portfolio(name=f"Bulk {i}", advisor=advisor, client=client) for i in range(3)])
    assert set(Portfolio.objects.filter(name__startswith="Bulk ").values_list("client_owner_id", flat=True)) == {
        advisor2.pk
    }


def test_client_reassigned_by_the_contact_form_moves_its_portfolios_between_books(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=advisor)
    portfolio = PortfolioFactory(advisor=owner, client=client)
    assert portfolio.pk in visible_ids(advisor) and portfolio.pk not in visible_ids(advisor2)
    crm_services.contact_update(actor=owner, contact=client, owner=advisor2)
    assert cached_owner(portfolio) == advisor2.pk
    assert portfolio.pk not in visible_ids(advisor) and portfolio.pk in visible_ids(advisor2)


def test_client_reassigned_by_a_bulk_update_is_followed(firm, owner, advisor, advisor2):
    clients = [ContactFactory(owner=advisor) for _ in range(3)]
    portfolios = [PortfolioFactory(advisor=owner, client=c) for c in clients for _ in range(2)]
    Contact.objects.filter(pk__in=[c.pk for c in clients]).update(owner=advisor2)
    assert {cached_owner(p) for p in portfolios} == {advisor2.pk}
    Contact.objects.filter(pk=clients[0].pk).update(owner=None)
    assert cached_owner(portfolios[0]) is None and cached_owner(portfolios[2]) == advisor2.pk
    assert_cache_right()


def test_portfolio_given_another_client_takes_that_clients_owner(firm, owner, advisor, advisor2):
    portfolio = PortfolioFactory(advisor=owner, client=ContactFactory(owner=advisor))
    other = ContactFactory(owner=advisor2)
    services.portfolio_update(portfolio=portfolio, actor=owner, client=other)
    assert cached_owner(portfolio) == advisor2.pk
    services.portfolio_update(portfolio=portfolio, actor=owner, client=None)
    assert cached_owner(portfolio) is None


def test_a_stale_instance_saved_after_a_reassignment_keeps_the_new_owner(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=advisor)
    portfolio = PortfolioFactory(advisor=owner, client=client)
    stale = Portfolio.objects.get(pk=portfolio.pk)
    assert stale.client_owner_id == advisor.pk
    Contact.objects.filter(pk=client.pk).update(owner=advisor2)
    stale.name = "Renamed"
    stale.save()  # writes every column, the old cached owner among them
    assert cached_owner(portfolio) == advisor2.pk
    Portfolio.objects.filter(pk=portfolio.pk).update(client_owner=owner)  # the cache cannot be set by hand
    assert cached_owner(portfolio) == advisor2.pk


def test_merged_contacts_portfolios_take_the_survivors_owner(firm, owner, advisor, advisor2):
    survivor = ContactFactory(owner=advisor2, email="keep@example.com")
    loser = ContactFactory(owner=advisor, email="gone@example.com")
    portfolio = PortfolioFactory(advisor=owner, client=loser)
    crm_services.contact_merge(actor=owner, survivor=survivor, loser=loser)
    portfolio.refresh_from_db()
    assert portfolio.client_id == survivor.pk and cached_owner(portfolio) == advisor2.pk
    assert portfolio.pk in visible_ids(advisor2) and portfolio.pk not in visible_ids(advisor)


def test_deleted_user_leaves_their_clients_portfolios_with_no_owner(firm, owner, advisor):
    leaver = get_user_model().objects.create_user(email="leaver@acme.test", password=None, role=Role.ADVISOR)
    client = ContactFactory(owner=leaver)
    portfolio = PortfolioFactory(advisor=advisor, client=client)
    assert cached_owner(portfolio) == leaver.pk
    leaver.delete()
    assert cached_owner(portfolio) is None
    assert_cache_right()


def test_changes_of_other_fields_leave_the_cache_alone(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=advisor)
    portfolio = PortfolioFactory(advisor=owner, client=client)
    crm_services.contact_update(actor=owner, contact=client, last_name="Renamed")
    services.portfolio_update(portfolio=portfolio, actor=owner, name="Also renamed", archived=True)
    assert cached_owner(portfolio) == advisor.pk
    assert portfolio.pk in visible_ids(advisor)  # archived portfolios stay in the book (shown on request)


def test_shared_portfolio_and_shared_client_enter_and_leave_the_book(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=owner)
    portfolio = PortfolioFactory(advisor=owner, client=client)
    assert portfolio.pk not in visible_ids(advisor2)
    services.portfolio_update(portfolio=portfolio, actor=owner, shared_with=[advisor2])
    assert portfolio.pk in visible_ids(advisor2)
    services.portfolio_update(portfolio=portfolio, actor=owner, shared_with=[])
    assert portfolio.pk not in visible_ids(advisor2)
    crm_services.contact_update(actor=owner, contact=client, shared_with=[advisor2])
    assert portfolio.pk in visible_ids(advisor2)
    crm_services.contact_update(actor=owner, contact=client, shared_with=[])
    assert portfolio.pk not in visible_ids(advisor2)


def test_reassigning_a_client_records_no_portfolio_event(firm, owner, advisor, advisor2):
    client = ContactFactory(owner=advisor)
    portfolio = PortfolioFactory(advisor=owner, client=client)
    before = PortfolioEvent.objects.filter(pgh_obj_id=portfolio.pk).count()
    crm_services.contact_update(actor=owner, contact=client, owner=advisor2)
    assert PortfolioEvent.objects.filter(pgh_obj_id=portfolio.pk).count() == before
    services.portfolio_update(portfolio=portfolio, actor=owner, name="Renamed")  # a real change still is
    assert PortfolioEvent.objects.filter(pgh_obj_id=portfolio.pk).count() == before + 1


def test_the_triggers_name_the_firms_own_tables_whatever_the_search_path(firm, other_firm, advisor, advisor2):
    client = ContactFactory(owner=advisor)
    portfolio = PortfolioFactory(advisor=advisor, client=client)
    with connection.cursor() as cursor:
        # The other firm first on the path: a trigger resolving tables by the path would update
        # (or read) the other firm's portfolios and leave this firm's cache stale.
        cursor.execute(f'SET search_path TO "{other_firm.schema_name}", public')
        cursor.execute(
            f'UPDATE "{firm.schema_name}".crm_contact SET owner_id = %s WHERE id = %s', [advisor2.pk, client.pk]
        )
        cursor.execute(
            f'INSERT INTO "{firm.schema_name}".portfolios_portfolio (name, advisor_id, client_id, base_currency,'
            " lot_method, archived, created_at, updated_at)"
            " VALUES ('By SQL', %s, %s, 'USD', 'fifo', false, now(), now()) RETURNING id",
            [advisor.pk, client.pk],
        )
        by_sql = cursor.fetchone()[0]
    connection.set_tenant(firm)  # the path back to this firm for the next query
    assert cached_owner(portfolio) == advisor2.pk
    assert Portfolio.objects.values_list("client_owner_id", flat=True).get(pk=by_sql) == advisor2.pk


def test_every_provisioned_firm_has_the_triggers(firm, other_firm):
    """The test firms are provisioned by cloning the template: the triggers come with the clone."""
    with connection.cursor() as cursor:
        for tenant in (firm, other_firm):
            cursor.execute(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND t.tgname LIKE 'portfolios_client_owner_%%' ORDER BY 1",
                [tenant.schema_name],
            )
            assert [r[0] for r in cursor.fetchall()] == [
                "portfolios_client_owner_follow",
                "portfolios_client_owner_set",
            ]


def test_client_reassigned_by_a_contact_import_is_followed(firm, owner, advisor, advisor2, owner_client):
    """The CRM import engine updates a duplicate (matched on e-mail) with the file's owner."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = ContactFactory(owner=advisor, email="moved@example.com")
    portfolio = PortfolioFactory(advisor=owner, client=client)
    text = f"First Name,E-mail,Owner\nMoved,moved@example.com,{advisor2.email}\n"
    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    job = owner_client.post("/api/v1/imports/", {"kind": "contacts", "file": upload}).json()["id"]
    r = owner_client.post(f"/api/v1/imports/{job}/preview/", {"duplicates": "update"}, content_type="application/json")
    assert r.json()["preview"]["counts"]["update"] == 1, r.content
    r = owner_client.post(f"/api/v1/imports/{job}/commit/")
    assert r.status_code == 200 and r.json()["report"]["updated"] == 1, r.content
    assert Contact.objects.get(pk=client.pk).owner_id == advisor2.pk
    assert cached_owner(portfolio) == advisor2.pk
    assert portfolio.pk in visible_ids(advisor2) and portfolio.pk not in visible_ids(advisor)
