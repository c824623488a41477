"""The portfolio list's page query runs as a prepared statement (decision 0705), and a prepared
statement never answers one firm with another firm's rows.

psycopg prepares a query that a server-binding cursor ran ``prepare_threshold`` times (5 unless
``DATABASE_PREPARE_THRESHOLD`` says otherwise) on the connection. The tests run every request on the
same connection, as a gunicorn worker does, and read PostgreSQL's own ``pg_prepared_statements``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import NotSupportedError, connection
from django_tenants.utils import schema_context

from codex.api import fastlist
from codex.api.fastlist import ValuesListMixin
from portfolios.models import Portfolio

from .factories import PortfolioFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/portfolios/"
RUNS = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] + 2


def _prepared_list_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "portfolios_portfolio"%'],
        )
        return [row[0] for row in cursor.fetchall()]


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def two_books(firm, other_firm, owner, outsider):
    """Portfolios in acme (the firm under test) and in globex, with names that tell them apart."""
    for i in range(3):
        PortfolioFactory(name=f"Acme book {i}", advisor=owner)
    with schema_context(other_firm.schema_name):
        for i in range(2):
            PortfolioFactory(name=f"Globex book {i}", advisor=outsider)
    ValuesListMixin._list_sql.clear()


def test_the_page_query_is_prepared_after_the_threshold(two_books, owner_client):
    assert _prepared_list_statements() == []
    answers = {tuple(_names(owner_client.get(BASE))) for _ in range(RUNS)}
    assert answers == {("Acme book 0", "Acme book 1", "Acme book 2")}
    statements = _prepared_list_statements()
    assert len(statements) == 1 and "COUNT(*) OVER ()" in statements[0]


def test_each_firm_gets_its_own_prepared_statement_and_its_own_rows(two_books, owner_client, outsider_client):
    """Firms taking turns on one connection: each has its own statement (its schema in a comment),
    and each answer holds that firm's rows only."""
    for _ in range(RUNS):
        assert _names(owner_client.get(BASE)) == ["Acme book 0", "Acme book 1", "Acme book 2"]
        assert _names(outsider_client.get(BASE)) == ["Globex book 0", "Globex book 1"]
    statements = sorted(_prepared_list_statements())
    assert len(statements) == 2
    assert statements[0].endswith("/* firm_acme */") and statements[1].endswith("/* firm_globex */")


def test_a_statement_prepared_for_one_firm_never_reads_another_firms_tables(
    two_books, owner_client, outsider_client, monkeypatch
):
    """Even one statement shared by both firms (no schema comment) answers each firm from its own
    schema: PostgreSQL parses a prepared statement again when the search_path has changed."""
    monkeypatch.setattr(fastlist, "_SCHEMA_NAME", re.compile(r"(?!)"))  # never matches: one statement
    for _ in range(RUNS):
        assert _names(owner_client.get(BASE)) == ["Acme book 0", "Acme book 1", "Acme book 2"]
        assert _names(outsider_client.get(BASE)) == ["Globex book 0", "Globex book 1"]
    assert len(_prepared_list_statements()) == 1


def test_an_advisors_book_binds_the_advisor_id_on_the_server(firm, advisor, advisor2, client_for):
    mine = PortfolioFactory(name="Mine", advisor=advisor)
    PortfolioFactory(name="Theirs", advisor=advisor2)
    ValuesListMixin._list_sql.clear()
    advisor_client = client_for(advisor)
    for _ in range(RUNS):
        assert [row["id"] for row in advisor_client.get(BASE).json()["results"]] == [mine.pk]
    statements = _prepared_list_statements()
    assert len(statements) == 1 and "$1" in statements[0]


def test_text_parameters_stay_bound_on_the_client(two_books, owner_client):
    for _ in range(RUNS):
        assert _names(owner_client.get(BASE + "?search=book+1")) == ["Acme book 1"]
    assert _prepared_list_statements() == []


def test_a_changed_result_type_prepares_the_statement_again(two_books, owner_client, monkeypatch):
    """After a migration changes a returned column's type, PostgreSQL refuses to run the statement
    that an older connection prepared ("cached plan must not change result type"); outside a
    transaction the list forgets the connection's statements and runs it again."""
    for _ in range(RUNS):
        _names(owner_client.get(BASE))
    assert len(_prepared_list_statements()) == 1
    real_run = fastlist.CompiledQuery._run
    calls = []

    def refuse_once(self, cursor, sql):
        calls.append(cursor.cursor.__class__.__name__)
        if len(calls) == 1:
            raise NotSupportedError("cached plan must not change result type")
        return real_run(self, cursor, sql)

    monkeypatch.setattr(fastlist.CompiledQuery, "_run", refuse_once)
    monkeypatch.setattr(fastlist, "_in_transaction", lambda: False)  # as a request in autocommit runs
    names = _names(owner_client.get(BASE))
    monkeypatch.undo()
    assert names == ["Acme book 0", "Acme book 1", "Acme book 2"]
    assert calls == ["Cursor", "Cursor"]  # the server-binding cursor, twice
    # DEALLOCATE ALL dropped the stale statement; the retry started counting again.
    assert _prepared_list_statements() == []


def test_in_a_transaction_the_refusal_is_raised(two_books, owner_client, monkeypatch):
    for _ in range(RUNS):
        _names(owner_client.get(BASE))

    def refuse(self, cursor, sql):
        raise NotSupportedError("cached plan must not change result type")

    monkeypatch.setattr(fastlist.CompiledQuery, "_run", refuse)
    owner_client.raise_request_exception = True
    with pytest.raises(NotSupportedError):
        owner_client.get(BASE)


def test_prepared_statements_can_be_turned_off(two_books, owner_client, monkeypatch):
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    for _ in range(RUNS):
        assert len(_names(owner_client.get(BASE))) == Portfolio.objects.count()
    assert _prepared_list_statements() == []


@pytest.mark.parametrize(("value", "ok"), [("off", True), ("0", True), ("12", True), ("five", False), ("-1", False)])
def test_the_threshold_setting_is_a_whole_number_or_off(value, ok):
    env = {**os.environ, "DATABASE_PREPARE_THRESHOLD": value, "DATABASE_URL": "postgres://u@localhost/x"}
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','codex.settings'); django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert (result.returncode == 0) is ok, result.stderr[-2000:]
    if not ok:
        assert "DATABASE_PREPARE_THRESHOLD must be a whole number or off" in result.stderr
