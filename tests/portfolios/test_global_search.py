"""The search page finds portfolios (by their name or their client's) and instruments (by ticker or
name), within the user's book and firm (issue #25, decision 1260)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from crm.selectors import global_search
from portfolios.market.models import Instrument

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory, in_public

pytestmark = pytest.mark.django_db


@pytest.fixture
def zephyr(firm):
    """A market instrument with a ticker no seed uses."""
    return in_public(InstrumentFactory, symbol="ZPHR", exchange="XNAS", name="Zephyr Robotics")


def test_owner_finds_a_portfolio_by_its_name_and_by_its_clients_name(owner_client, owner):
    client = ContactFactory(first_name="Quintus", last_name="Fabius")
    portfolio = PortfolioFactory(name="Quintessa growth", client=client, advisor=owner)
    hits = [(h.kind, h.pk) for h in global_search(owner, "quintessa")]
    assert [hit for hit in hits if hit[0] == "portfolio"] == [("portfolio", portfolio.pk)]
    by_client = [(h.kind, h.pk) for h in global_search(owner, "Fabius")]
    assert ("portfolio", portfolio.pk) in by_client and ("contact", client.pk) in by_client
    page = owner_client.get("/crm/search/?q=Quintessa").content.decode()
    assert f'href="/portfolios/{portfolio.pk}/">Quintessa growth</a>' in page
    assert "Quintus Fabius · USD" in page


def test_a_ticker_finds_its_instrument_first(owner_client, owner, zephyr):
    ContactFactory(first_name="Zphr", last_name="Lookalike")  # a CRM hit for the same text
    hits = global_search(owner, "zphr")
    assert (hits[0].kind, hits[0].pk, hits[0].title) == ("instrument", zephyr.pk, "ZPHR")
    assert hits[0].url == f"/portfolios/instruments/{zephyr.pk}/"
    assert "Zephyr Robotics · XNAS" in hits[0].subtitle
    by_name = [(h.kind, h.pk) for h in global_search(owner, "zephyr robot")]
    assert by_name == [("instrument", zephyr.pk)]
    page = owner_client.get("/crm/search/?q=ZPHR").content.decode()
    assert f'href="/portfolios/instruments/{zephyr.pk}/">ZPHR</a>' in page
    assert owner_client.get(f"/portfolios/instruments/{zephyr.pk}/").status_code == 200


def test_advisor_finds_only_the_portfolios_of_their_book(firm, advisor, advisor2):
    mine = PortfolioFactory(name="Orchard income", client=ContactFactory(), advisor=advisor)
    PortfolioFactory(name="Orchard growth", client=ContactFactory(), advisor=advisor2)
    assert [(h.kind, h.pk) for h in global_search(advisor, "orchard")] == [("portfolio", mine.pk)]


def test_another_firms_portfolios_and_own_instruments_are_never_found(firm, other_firm, owner, outsider):
    with schema_context(other_firm.schema_name):
        theirs = PortfolioFactory(name="Borealis trust", client=ContactFactory(), advisor=outsider)
        fund = InstrumentFactory(
            symbol="BORFUND", exchange="", name="Borealis private fund", owner=other_firm.schema_name
        )
        # positive control: the other firm's own people find both
        found = {(h.kind, h.pk) for h in global_search(outsider, "borealis")}
        assert found == {("portfolio", theirs.pk), ("instrument", fund.pk)}
    assert global_search(owner, "borealis") == []
    assert global_search(owner, "BORFUND") == []
    with schema_context("public"):
        assert Instrument.all_objects.filter(pk=fund.pk).exists()


def test_search_page_query_count_is_pinned(owner_client, owner, zephyr, django_assert_max_num_queries):
    for i in range(12):
        PortfolioFactory(name=f"Zephyr sleeve {i}", client=ContactFactory(), advisor=owner)
    global_search(owner, "zephyr")  # compiles the CRM's statements, kept per shape
    # the CRM's text search and typo step (2), portfolios (1), instruments (1)
    with django_assert_max_num_queries(4):
        hits = global_search(owner, "zephyr")
    assert [h.kind for h in hits].count("portfolio") == 12 and hits[-1].kind == "instrument"


def test_a_single_letter_searches_nothing(owner, zephyr):
    assert global_search(owner, "z") == []
