"""Search: full text over contacts, companies and deals, ranked; typo-tolerant names with pg_trgm."""

from __future__ import annotations

import pytest
from django.db import connection

from crm.selectors import crm_search

from .factories import CompanyFactory, ContactFactory, DealFactory

API = "/api/v1"


@pytest.fixture
def trigram(firm):
    from crm.pg import trigram_installed

    if not trigram_installed(connection):
        pytest.skip("pg_trgm is not installed on this PostgreSQL (embedded pgserver); run with DATABASE_URL")


def test_finds_contacts_companies_and_deals_by_words_and_prefixes(firm, owner):
    ContactFactory(first_name="Margaret", last_name="Hamilton", email="mh@apollo.example")
    CompanyFactory(name="Hamilton Partners", industry="Aerospace")
    DealFactory(title="Hamilton estate planning")
    ContactFactory(first_name="Unrelated", last_name="Person")
    hits = crm_search(owner, "hamil", 10)
    assert {(h.kind, h.title) for h in hits} == {
        ("contact", "Margaret Hamilton"),
        ("company", "Hamilton Partners"),
        ("deal", "Hamilton estate planning"),
    }
    hits = crm_search(owner, "margaret hamilton", 10)
    assert hits[0].title == "Margaret Hamilton" and "Unrelated Person" not in [h.title for h in hits]
    assert [h.kind for h in crm_search(owner, "apollo", 10)] == ["contact"]  # e-mail is indexed
    assert [h.title for h in crm_search(owner, "aerospace", 10)] == ["Hamilton Partners"]


def test_better_matches_rank_first(firm, owner):
    ContactFactory(first_name="Ann", last_name="Smith", notes="met at the smith conference, smith smith")
    ContactFactory(first_name="Bob", last_name="Jones", notes="knows a smith")
    hits = crm_search(owner, "smith", 10)
    assert [h.title for h in hits][0] == "Ann Smith"


def test_short_or_empty_queries_return_nothing_and_symbols_are_safe(firm, owner):
    ContactFactory(first_name="Xi")
    assert crm_search(owner, "", 10) == []
    assert crm_search(owner, "x", 10) == []
    assert crm_search(owner, "&|!():*'\\", 10) == []
    assert crm_search(owner, "o'brien & (x | y)", 10) == []


def test_typos_in_names_still_find_the_person(trigram, owner):
    ContactFactory(first_name="Catherine", last_name="Zeta-Jones")
    ContactFactory(first_name="Katharina", last_name="Schmidt")
    titles = [h.title for h in crm_search(owner, "Schmitt", 10)]
    assert titles[:1] == ["Katharina Schmidt"]
    titles = [h.title for h in crm_search(owner, "katherina", 10)]
    assert "Katharina Schmidt" in titles


def test_search_uses_the_indexes(trigram, owner):
    from crm import selectors

    ContactFactory(first_name="Index", last_name="Check")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            text_plan = (
                selectors.access.contacts_for(owner).filter(search_document=selectors._tsquery("check")).explain()
            )
            fuzzy_plan = (
                selectors.access.contacts_for(owner)
                .annotate(n=selectors.Lower(selectors.contact_name()))
                .filter(n__trigram_word_similar="chek")
                .explain()
            )
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert "crm_contact_document" in text_plan and "crm_contact_name_trgm" in fuzzy_plan


def test_text_matches_rank_above_fuzzy_ones(firm, owner):
    ContactFactory(first_name="Anna", last_name="Schmidt")
    hits = crm_search(owner, "schmidt", 10)
    assert hits[0].title == "Anna Schmidt" and hits[0].score >= 1


def test_search_api_and_page(owner_client):
    ContactFactory(first_name="Grace", last_name="Hopper")
    r = owner_client.get(f"{API}/search/?q=hopper")
    assert r.status_code == 200
    (hit,) = r.json()["results"]
    assert hit["kind"] == "contact" and hit["title"] == "Grace Hopper" and hit["url"].startswith("/crm/contacts/")
    assert owner_client.get(f"{API}/search/?q=hopper&limit=x").status_code == 400
    page = owner_client.get("/crm/search/?q=hopper").content.decode()
    assert "Grace Hopper" in page
