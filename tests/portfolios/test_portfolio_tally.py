"""The firm's number of portfolios kept on write (``PortfolioTally``, decision 1320): the triggers
count every insert and delete whatever wrote them, the whole firm's list reads the count instead of
``COUNT(*)`` over the table, and a filtered, searched or advisor's list still counts its own rows.
Each firm has its own count: another firm's list never shows ours."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from portfolios.models import Portfolio, PortfolioTally
from portfolios.selectors import portfolio_firm_count

from .factories import ContactFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/portfolios/"


def _counted_portfolios(queries) -> list[str]:
    return [
        q["sql"] for q in queries if q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "portfolios_portfolio"')
    ]


def test_triggers_count_inserts_bulk_inserts_and_deletes(firm, advisor):
    before = Portfolio.objects.count()
    assert portfolio_firm_count() == before
    PortfolioFactory(advisor=advisor)
    Portfolio.objects.bulk_create([Portfolio(name=f"Bulk {i}", advisor=advisor) for i in range(5)])
    assert portfolio_firm_count() == before + 6 == Portfolio.objects.count()
    Portfolio.objects.filter(name__startswith="Bulk ").delete()
    assert portfolio_firm_count() == before + 1 == Portfolio.objects.count()


def test_truncate_empties_the_tally(firm, advisor):
    PortfolioFactory(advisor=advisor)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending deferred checks
        cursor.execute("TRUNCATE portfolios_portfolio CASCADE")
    assert not PortfolioTally.objects.exists()
    assert portfolio_firm_count() == 0
    PortfolioFactory(advisor=advisor)
    assert portfolio_firm_count() == 1


def test_owners_whole_list_reads_the_tally_not_count(firm, owner_client, advisor):
    for i in range(3):
        PortfolioFactory(name=f"P{i}", advisor=advisor)
    with CaptureQueriesContext(connection) as ctx:
        body = owner_client.get(BASE, {"page_size": 2}).json()
    assert body["count"] == Portfolio.objects.count() == 3
    assert len(body["results"]) == 2 and body["next"]
    assert not _counted_portfolios(ctx.captured_queries)
    assert any("portfolios_portfoliotally" in q["sql"] for q in ctx.captured_queries)
    last = owner_client.get(BASE, {"page_size": 2, "page": 2}).json()
    assert [r["name"] for r in last["results"]] == ["P2"] and last["next"] is None


def test_filtered_and_searched_lists_count_their_own_rows(firm, owner_client, advisor):
    client = ContactFactory(owner=advisor, first_name="Grace", last_name="Hopper")
    PortfolioFactory(name="Navy", advisor=advisor, client=client)
    PortfolioFactory(name="Other", advisor=advisor, archived=True)
    PortfolioFactory(name="Third", advisor=advisor)
    with CaptureQueriesContext(connection) as ctx:
        assert owner_client.get(BASE, {"search": "hopper"}).json()["count"] == 1
    assert _counted_portfolios(ctx.captured_queries)
    assert owner_client.get(BASE, {"archived": "true"}).json()["count"] == 1
    assert owner_client.get(BASE, {"archived": "false"}).json()["count"] == 2
    # an empty search narrows nothing: the kept count answers
    with CaptureQueriesContext(connection) as ctx:
        assert owner_client.get(BASE, {"search": ""}).json()["count"] == 3
    assert not _counted_portfolios(ctx.captured_queries)


def test_advisors_list_counts_their_book(firm, advisor_client, advisor, advisor2):
    PortfolioFactory(advisor=advisor)
    PortfolioFactory(advisor=advisor2)
    PortfolioFactory(advisor=advisor2)
    with CaptureQueriesContext(connection) as ctx:
        body = advisor_client.get(BASE).json()
    assert body["count"] == 1 and len(body["results"]) == 1
    assert _counted_portfolios(ctx.captured_queries)


def test_another_firm_lists_its_own_count(firm, other_firm, owner_client, outsider_client, outsider, advisor):
    ours = {PortfolioFactory(name="Ours", advisor=advisor).pk for _ in range(2)}
    with tenant_context(other_firm):
        PortfolioFactory(name="Theirs", advisor=outsider)
        theirs = set(Portfolio.objects.values_list("pk", flat=True))
    mine = owner_client.get(BASE).json()
    assert mine["count"] == 2 and {r["id"] for r in mine["results"]} == ours
    outsider = outsider_client.get(BASE)
    assert outsider.status_code == 200
    assert outsider.json()["count"] == len(theirs)
    assert {r["id"] for r in outsider.json()["results"]} == theirs
    assert [r["name"] for r in outsider.json()["results"]].count("Ours") == 0
