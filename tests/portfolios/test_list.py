"""``GET /api/v1/portfolios/``: what the list answers for every shape of every field, its book
scoping, paging, filters and errors, and its query count (``selectors.portfolio_list`` read
through ``PortfolioSerializer``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import caches
from django.utils import timezone

from portfolios.access import portfolios_visible_to
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_list

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/portfolios/"


@pytest.fixture
def varied(firm, owner, advisor, advisor2, viewer):
    """Portfolios covering every shape of every field of the serializer."""
    bench = InstrumentFactory(symbol="IDXT")
    no_last_name = ContactFactory(owner=advisor, first_name="Cher", last_name="")
    unicode_client = ContactFactory(owner=advisor2, first_name="Zoë", last_name="Ørsted")
    made = {
        "growth": PortfolioFactory(
            name="Ada growth", advisor=advisor, client=ContactFactory(owner=advisor), benchmark=bench
        ),
        "no_client": PortfolioFactory(
            name="No client", advisor=advisor, client=None, base_currency="EUR", lot_method="LIFO"
        ),
        "mononym": PortfolioFactory(
            name="Mononym", advisor=advisor2, client=no_last_name, archived=True, lot_method="HIFO"
        ),
        "unicode": PortfolioFactory(name="Zoë's", advisor=advisor2, client=unicode_client, base_currency="GBP"),
    }
    made["growth"].shared_with.add(advisor2, viewer, owner)
    made["mononym"].shared_with.add(advisor)
    Portfolio.objects.filter(pk=made["no_client"].pk).update(
        created_at=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 0, 0, 0, 120000, tzinfo=UTC),
    )
    for i in range(7):  # enough rows for several pages
        PortfolioFactory(name=f"Filler {i:02d}", advisor=advisor if i % 2 else advisor2)
    return made


def test_rows_carry_every_field_of_the_serializer(varied, owner_client, owner, advisor, advisor2, viewer):
    rows = {row["name"]: row for row in owner_client.get(BASE + "?page_size=200").json()["results"]}
    assert len(rows) == 11
    growth = rows["Ada growth"]
    assert growth["client"] == varied["growth"].client_id
    assert growth["client_name"] == str(varied["growth"].client)
    assert growth["advisor"] == advisor.pk and growth["advisor_email"] == advisor.email
    assert growth["benchmark_symbol"] == "IDXT" and growth["benchmark"] == varied["growth"].benchmark_id
    assert growth["shared_with"] == sorted([advisor2.pk, viewer.pk, owner.pk])
    assert rows["No client"]["client"] is None and rows["No client"]["client_name"] is None
    assert rows["No client"]["base_currency"] == "EUR" and rows["No client"]["lot_method"] == "LIFO"
    assert rows["No client"]["benchmark"] is None and rows["No client"]["benchmark_symbol"] is None
    assert rows["No client"]["created_at"] == "2024-02-29T23:59:59Z"
    assert rows["No client"]["updated_at"] == "2024-03-01T00:00:00.120000Z"
    assert rows["Mononym"]["client_name"] == "Cher" and rows["Mononym"]["archived"] is True
    assert rows["Zoë's"]["client_name"] == "Zoë Ørsted"
    assert rows["Filler 00"]["shared_with"] == []
    assert set(growth) == {
        "id",
        "name",
        "client",
        "client_name",
        "advisor",
        "advisor_email",
        "base_currency",
        "benchmark",
        "benchmark_symbol",
        "lot_method",
        "shared_with",
        "archived",
        "created_at",
        "updated_at",
    }


def test_timestamps_follow_the_current_time_zone(varied, owner_client, settings):
    settings.TIME_ZONE = "America/St_Johns"
    with timezone.override("America/St_Johns"):
        row = next(r for r in owner_client.get(BASE + "?search=client").json()["results"] if r["name"] == "No client")
    assert row["created_at"] == "2024-02-29T20:29:59-03:30"


def test_each_caller_sees_exactly_their_book(varied, client_for, owner, advisor, advisor2):
    visible = {u: set(portfolios_visible_to(u).values_list("pk", flat=True)) for u in (owner, advisor, advisor2)}
    assert visible[advisor] != visible[advisor2] and visible[advisor] < visible[owner]
    for user in (owner, advisor, advisor2):
        body = client_for(user).get(BASE + "?page_size=200").json()
        assert {row["id"] for row in body["results"]} == visible[user]
        assert body["count"] == len(visible[user])


def test_selector_is_the_book_of_the_access_rule(varied, owner, advisor, advisor2, viewer):
    for user in (owner, advisor, advisor2, viewer):
        assert set(portfolio_list(user=user).values_list("pk", flat=True)) == set(
            portfolios_visible_to(user).values_list("pk", flat=True)
        )


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?page_size=3", ["Ada growth", "Filler 00", "Filler 01"]),
        ("?page=2&page_size=3", ["Filler 02", "Filler 03", "Filler 04"]),
        ("?page=last&page_size=4", ["Mononym", "No client", "Zoë's"]),
        ("?ordering=-name&page_size=2", ["Zoë's", "No client"]),
        ("?search=cher", ["Mononym"]),
        ("?search=zo%C3%AB", ["Zoë's"]),
        ("?base_currency=eur", ["No client"]),
        ("?archived=true", ["Mononym"]),
    ],
)
def test_paging_filters_search_and_ordering(varied, owner_client, query, names):
    response = owner_client.get(BASE + query)
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == names


def test_page_links_and_count(varied, owner_client):
    body = owner_client.get(BASE + "?page_size=5&page=2").json()
    assert body["count"] == 11
    assert body["next"].endswith("page=3&page_size=5") and body["previous"].endswith("page_size=5")


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?page=99", 404, "not_found"),
        ("?page=11388477784675340288", 404, "not_found"),
        ("?page=0", 404, "not_found"),
        ("?page=abc", 404, "not_found"),
        ("?page=", 400, "invalid"),
        ("?page_size=abc", 400, "invalid"),
        ("?page_size=500", 400, "invalid"),
        ("?advisor=notanumber", 400, "invalid"),
    ],
)
def test_bad_paging_and_filters_answer_in_the_envelope(varied, owner_client, query, status, code):
    response = owner_client.get(BASE + query)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_empty_book_answers_count_zero_and_no_second_page(firm, advisor_client):
    assert advisor_client.get(BASE).json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert advisor_client.get(BASE + "?page=2").status_code == 404


@pytest.fixture
def memory_cache(settings):
    """The default cache off the database, as with Redis in production: the throttle costs no query."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portfolio-list"},
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_list_query_count_does_not_grow_with_rows(
    firm, memory_cache, owner_client, advisor, owner, django_assert_num_queries
):
    def add(count):
        for _ in range(count):
            p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
            p.shared_with.add(owner, advisor)

    add(2)
    owner_client.get(BASE)  # the session's first request fills the host and session caches
    # the schema switch, the session, its user, then DRF's COUNT and the page (joins, shared-with ids)
    with django_assert_num_queries(5) as few:
        assert owner_client.get(BASE).status_code == 200
    add(20)
    with django_assert_num_queries(len(few)):
        assert len(owner_client.get(BASE).json()["results"]) == 22


def test_filterset_is_built_only_when_a_filter_is_named(varied, owner_client, monkeypatch):
    """The list without a filter parameter skips django-filter's form (codex.api.filters), and with
    one still filters and still refuses an empty typed value."""
    from portfolios.api.portfolio import PortfolioFilter

    built = []
    original = PortfolioFilter.__init__

    def spy(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(PortfolioFilter, "__init__", spy)
    response = owner_client.get(BASE + "?page_size=200&ordering=name&search=o")
    assert response.status_code == 200 and response.json()["count"] > 1
    assert built == []
    assert [row["name"] for row in owner_client.get(BASE + "?archived=true").json()["results"]] == ["Mononym"]
    assert built == [1]
    response = owner_client.get(BASE + "?archived=")
    assert response.status_code == 400 and "archived" in response.json()["error"]["details"]
    assert len(built) == 2
