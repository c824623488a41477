"""The portfolio list's fast path (decision 0703) answers exactly what the serializer path answers.

``GET /api/v1/portfolios/`` builds its rows from ``.values()`` with ``portfolio_list_rows``, counts
the total in the page query and reuses the compiled SQL per caller scope and query string. These
tests compare it with the general path (``PortfolioSerializer``, django-filter, a ``COUNT``):
row by row, and byte for byte over HTTP for filters, search, ordering, pages and errors, on the
first request of a query (compiled) and the next (reused).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from codex.api.fastlist import ValuesListMixin
from portfolios.access import portfolios_visible_to
from portfolios.api import PORTFOLIO_LIST_VALUES, PortfolioSerializer, PortfolioViewSet, portfolio_list_rows
from portfolios.models import Portfolio
from tests.conftest import FirmClient

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/portfolios/"


@pytest.fixture
def varied(firm, owner, advisor, advisor2, viewer):
    """Portfolios covering every shape of every field of the serializer."""
    bench = InstrumentFactory(symbol="IDXT")
    no_last_name = ContactFactory(owner=advisor, first_name="Cher", last_name="")
    unicode_client = ContactFactory(owner=advisor2, first_name="Zoë", last_name="Ørsted\u2028x")
    made = [
        PortfolioFactory(name="Ada growth", advisor=advisor, client=ContactFactory(owner=advisor), benchmark=bench),
        PortfolioFactory(name="No client", advisor=advisor, client=None, base_currency="EUR", lot_method="LIFO"),
        PortfolioFactory(name="Mononym", advisor=advisor2, client=no_last_name, archived=True, lot_method="HIFO"),
        PortfolioFactory(name='Quote " and \\ back', advisor=advisor2, client=unicode_client, base_currency="GBP"),
        PortfolioFactory(name="Ünïcode – ✓", advisor=owner, client=None, benchmark=bench, lot_method="AVG"),
    ]
    made[0].shared_with.add(advisor2, viewer, owner)  # several ids: ascending order
    made[2].shared_with.add(advisor)
    # Timestamps with and without microseconds, and one far from today.
    Portfolio.objects.filter(pk=made[1].pk).update(created_at=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC))
    Portfolio.objects.filter(pk=made[3].pk).update(
        created_at=datetime(1999, 12, 31, 0, 0, 0, 1, tzinfo=UTC), updated_at=datetime(2030, 1, 1, tzinfo=UTC)
    )
    for i in range(7):  # enough rows for several pages
        PortfolioFactory(name=f"Filler {i:02d}", advisor=advisor if i % 2 else advisor2)
    return made


def _serializer_rows(queryset) -> list[dict]:
    return json.loads(json.dumps(PortfolioSerializer(queryset, many=True).data))


def _fast_rows(queryset) -> list[dict]:
    return portfolio_list_rows(list(queryset.values(*PORTFOLIO_LIST_VALUES)))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
def test_rows_equal_the_serializer_for_every_field_shape(varied, owner, zone):
    view = PortfolioViewSet(request=type("R", (), {"user": owner})(), format_kwarg=None)
    queryset = view.get_queryset().order_by("name", "id")
    with timezone.override(zone):
        expected = _serializer_rows(queryset)
        fast = _fast_rows(queryset)
    assert len(fast) == Portfolio.objects.count() >= 12
    assert fast == expected
    # The shapes the fixture set out to cover are really there.
    by_name = {row["name"]: row for row in fast}
    assert by_name["No client"]["client"] is None and by_name["No client"]["client_name"] is None
    assert by_name["Mononym"]["client_name"] == "Cher"
    assert by_name["Ada growth"]["benchmark_symbol"] == "IDXT"
    assert by_name["Ada growth"]["shared_with"] == sorted(by_name["Ada growth"]["shared_with"])
    assert len(by_name["Ada growth"]["shared_with"]) == 3
    assert by_name["Mononym"]["archived"] is True


def _both_paths(client, url, monkeypatch, **headers):
    """Responses of the fast path (first and second request: compiled, then reused) and the general one."""
    ValuesListMixin._list_sql.clear()
    first = client.get(url, **headers)
    second = client.get(url, **headers)
    monkeypatch.setattr(PortfolioViewSet, "values_list_path", False)
    general = client.get(url, **headers)
    monkeypatch.setattr(PortfolioViewSet, "values_list_path", True)
    return first, second, general


QUERIES = [
    "",
    "?page=2",
    "?page=2&page_size=3",
    "?page=3&page_size=5",
    "?page_size=200",
    "?ordering=-name",
    "?ordering=created_at",
    "?ordering=base_currency,-id",
    "?search=ada",
    "?search=zo%C3%AB",
    "?base_currency=eur",
    "?archived=true",
    "?archived=false&ordering=-id&page_size=4&page=2",
    "?page=last",
    "?page=last&page_size=4",
    "?page=99",
    "?page=11388477784675340288",  # beyond a bigint OFFSET: 404 like the general path, never a 500
    "?page=0",
    "?page=abc",
    "?page=",
    "?page_size=abc",
    "?page_size=500",
    "?unknown=1",
    "?advisor=notanumber",
]


@pytest.mark.parametrize("query", QUERIES)
def test_http_responses_equal_the_general_path_byte_for_byte(varied, owner_client, advisor_client, monkeypatch, query):
    for client in (owner_client, advisor_client):
        first, second, general = _both_paths(client, BASE + query, monkeypatch)
        assert (first.status_code, first.content) == (general.status_code, general.content), query
        assert (second.status_code, second.content) == (general.status_code, general.content), query


def test_api_key_response_equals_the_general_path(varied, firm, api_key_for, monkeypatch):
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    first, second, general = _both_paths(client, BASE + "?page_size=5&page=2", monkeypatch, HTTP_X_API_KEY=raw)
    assert first.status_code == 200
    assert first.content == second.content == general.content
    body = first.json()
    assert body["count"] == Portfolio.objects.count()
    assert body["next"].endswith("page=3&page_size=5") and body["previous"].endswith("page_size=5")


def test_empty_book_answers_count_zero_and_no_second_page(firm, advisor_client, monkeypatch):
    first, second, general = _both_paths(advisor_client, BASE, monkeypatch)
    assert first.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert first.content == second.content == general.content
    first, second, general = _both_paths(advisor_client, BASE + "?page=2", monkeypatch)
    assert first.status_code == second.status_code == general.status_code == 404
    assert first.content == general.content


def test_reused_query_keeps_each_advisor_to_their_own_book(varied, client_for, owner, advisor, advisor2):
    """The compiled SQL is kept per caller scope: an advisor asking with the same query string as
    another advisor (or as the owner) gets their own book, on the first and the reused request."""
    ValuesListMixin._list_sql.clear()
    visible = {u: set(portfolios_visible_to(u).values_list("pk", flat=True)) for u in (owner, advisor, advisor2)}
    assert visible[advisor] != visible[advisor2] and visible[advisor] < visible[owner]
    for _ in range(2):  # compiled, then reused
        for user in (owner, advisor, advisor2):
            ids = {row["id"] for row in client_for(user).get(BASE + "?page_size=200").json()["results"]}
            assert ids == visible[user]
    assert len(ValuesListMixin._list_sql) == 3  # the firm, and one per advisor


def test_a_named_filter_still_goes_through_django_filter(varied, owner_client):
    eur = owner_client.get(BASE + "?base_currency=EUR").json()
    assert [row["name"] for row in eur["results"]] == ["No client"]
    assert eur["count"] == 1
    bad = owner_client.get(BASE + "?advisor=notanumber")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-06 13:00:00+00",
        "2026-12-06 13:00:00.1+00",
        "2026-12-06 13:00:00.12345+00",
        "2026-12-06 13:00:00.123456+00",
        "2024-02-29 23:59:59.000001+00",
        "0999-01-01 00:00:00+00",
        "2026-12-06 13:00:00.5+05:30",  # a session in another time zone: parsed
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
def test_postgres_timestamp_text_is_written_as_drf_writes_the_datetime(text, zone):
    from zoneinfo import ZoneInfo

    from rest_framework import serializers as drf_serializers

    from codex.api.fastlist import drf_datetime

    with timezone.override(ZoneInfo(zone)):
        expected = drf_serializers.DateTimeField().to_representation(datetime.fromisoformat(text))
        assert drf_datetime(text, timezone.get_current_timezone()) == expected
        assert drf_datetime(datetime.fromisoformat(text), timezone.get_current_timezone()) == expected
    assert drf_datetime(None, UTC) is None


def test_timestamps_come_as_text_only_to_the_list_page(varied, owner_client):
    """The text loader is set on the list query's own cursor: the connection's other queries
    still load ``timestamptz`` as aware datetimes."""
    ValuesListMixin._list_sql.clear()
    for _ in range(2):
        assert owner_client.get(BASE).status_code == 200
    (query, _number, _size) = next(iter(ValuesListMixin._list_sql.values()))
    row = query.fetch()[0]
    assert type(row["created_at"]) is str and row["created_at"].endswith("+00")  # the page: text
    assert isinstance(Portfolio.objects.values_list("created_at", flat=True).first(), datetime)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        assert isinstance(cursor.fetchone()[0], datetime)
