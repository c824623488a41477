"""The searched lists match related names through indexed lookups (decision 0921): the portfolios
and deals ``?search=`` find rows by the client's, contact's or company's name, accents and case
folded, without an OR across a join; the owner finds them, another firm does not."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.crm.factories import CompanyFactory, ContactFactory, DealFactory
from tests.portfolios.factories import PortfolioFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(firm, advisor):
    zoe = ContactFactory(owner=advisor, first_name="Zoë", last_name="Ærnsdóttir")
    ada = ContactFactory(owner=advisor, first_name="Ada", last_name="Lovelace")
    PortfolioFactory(name="Growth", advisor=advisor, client=zoe)
    PortfolioFactory(name="Lovelace family trust", advisor=advisor, client=None)
    PortfolioFactory(name="Income", advisor=advisor, client=ada)
    acme = CompanyFactory(name="Åcme Holdings", owner=advisor)
    DealFactory(title="Rollover", contact=zoe, owner=advisor)
    DealFactory(title="Estate", company=acme, owner=advisor)
    DealFactory(title="Lovelace mandate", owner=advisor)
    return zoe, ada


def _names(client, url, key="name"):
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(url).json()
    return sorted(r[key] for r in body["results"]), [q["sql"] for q in ctx.captured_queries]


def test_portfolio_search_matches_the_name_or_the_clients_name_folded(named, owner_client):
    names, sql = _names(owner_client, "/api/v1/portfolios/?search=lovelace")
    assert names == ["Income", "Lovelace family trust"]
    assert _names(owner_client, "/api/v1/portfolios/?search=aernsdottir")[0] == ["Growth"]
    assert _names(owner_client, "/api/v1/portfolios/?search=ZOE")[0] == ["Growth"]
    listed = [q for q in sql if "portfolios_portfolio" in q and "LIKE" in q]
    assert listed and all("= ANY(" in q and 'JOIN "crm_contact"' not in q.split("WHERE")[0] for q in listed)


def test_deal_search_matches_the_title_contact_or_company_folded(named, owner_client):
    assert _names(owner_client, "/api/v1/deals/?search=zoe", key="title")[0] == ["Rollover"]
    assert _names(owner_client, "/api/v1/deals/?search=acme", key="title")[0] == ["Estate"]
    names, sql = _names(owner_client, "/api/v1/deals/?search=lovelace", key="title")
    assert names == ["Lovelace mandate"]
    counted = [q for q in sql if q.startswith('SELECT COUNT(*) AS "__count" FROM "crm_deal"')]
    assert counted and all("LEFT OUTER JOIN" not in q for q in counted)


def test_another_firm_finds_none_of_them(named, outsider_client):
    assert outsider_client.get("/api/v1/portfolios/?search=lovelace").json()["count"] == 0
    assert outsider_client.get("/api/v1/deals/?search=zoe").json()["count"] == 0
