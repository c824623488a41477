"""A valuation rebuild racing a ledger write on REAL separate database connections (issue 19's bad
input: "a rebuild that races a new write ends with the figures of the newest ledger").

What the two connections race on must be committed, so it cannot live in the usual rolled-back test
transaction (and ``transaction=True`` would flush the shared firms): the fixture commits a portfolio
in acme's schema and deletes every row it caused afterwards, its change history included, then
checks that every table of the schema holds as many rows as before (as tests/fees/test_concurrent_runs.py).
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pghistory.models
import pgtrigger
import pytest
from django.apps import apps
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.notifications.models import Notification
from codex.outbox.models import OutboxEvent
from crm.models import Contact
from portfolios import services, valuation_services
from portfolios.models import Portfolio, Transaction, Valuation, ValuationState
from tenants.accounts.models import User
from tenants.models import Tenant

MARKER = "RaceValuation"


def _row_counts() -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        counts = {}
        for (table,) in cur.fetchall():
            cur.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            counts[table] = cur.fetchone()[0]
    return counts


def _delete_everything() -> None:
    portfolios = list(Portfolio.objects.filter(name__startswith=MARKER).values_list("pk", flat=True))
    txns = list(Transaction.objects.filter(portfolio_id__in=portfolios).values_list("pk", flat=True))
    contacts = list(Contact.objects.filter(last_name__startswith=MARKER).values_list("pk", flat=True))
    Portfolio.objects.filter(pk__in=portfolios).delete()
    Contact.objects.filter(pk__in=contacts).delete()
    valuation_services.firm_valuations_rebuild()  # the firm's totals counted the portfolio
    tracked = {Portfolio: portfolios, Transaction: txns, Contact: contacts}
    for model in apps.get_models():  # their change history: append-only, stepped over for this delete only
        if issubclass(model, pghistory.models.Event) and getattr(model, "pgh_tracked_model", None) in tracked:
            with pgtrigger.ignore(f"{model._meta.label}:append_only"):
                model.objects.filter(pgh_obj_id__in=tracked[model.pgh_tracked_model]).delete()


@pytest.fixture
def committed_book(django_db_setup, django_db_blocker):
    """A committed portfolio in acme with one deposit, valued."""
    with django_db_blocker.unblock():
        with schema_context("public"):
            firm = Tenant.objects.get(slug="acme")
        connection.set_tenant(firm)
        assert not Portfolio.objects.filter(name__startswith=MARKER).exists(), "a previous run leaked rows"
        before = _row_counts()
        last_event = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        last_notice = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        try:
            owner = User.objects.get(email="owner@acme.test")
            client = Contact.objects.create(first_name="Client", last_name=MARKER, owner=owner)
            book = Portfolio.objects.create(name=f"{MARKER} book", client=client, advisor=owner, base_currency="USD")
            services.transaction_record(
                portfolio=book, kind="deposit", trade_date=timezone.localdate() - timedelta(days=30), amount="1000"
            )
            yield firm, book
        finally:
            connection.set_tenant(firm)
            _delete_everything()
            OutboxEvent.objects.filter(pk__gt=last_event).delete()
            Notification.objects.filter(pk__gt=last_notice).delete()
            after = _row_counts()
            assert {t: (before[t], n) for t, n in after.items() if before.get(t) != n} == {}
            connection.set_schema_to_public()


def test_a_rebuild_racing_a_write_on_another_connection_ends_with_the_newest_ledger(committed_book, monkeypatch):
    firm, book = committed_book
    today = timezone.localdate()
    real = valuation_services.compute_from
    computed, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    calls: list[str] = []

    def compute_then_wait(**kwargs):
        result = real(**kwargs)
        if threading.current_thread().name == "rebuild":
            calls.append("rebuild")
            if len(calls) == 1:  # the first computation, from the old ledger: the write lands now
                computed.set()
                assert written.wait(30), "the write never committed"
        return result

    def rebuild():
        try:
            connection.set_tenant(firm)  # this thread's own connection
            valuation_services.valuations_rebuild(portfolio=Portfolio.objects.get(pk=book.pk), since=date.min)
        except BaseException as exc:  # noqa: BLE001 (collected, then asserted empty in the test thread)
            errors.append(exc)
        finally:
            connections.close_all()

    def write():
        try:
            connection.set_tenant(firm)
            assert computed.wait(30), "the rebuild never computed"
            services.transaction_record(  # commits on this connection while the rebuild holds old figures
                portfolio=Portfolio.objects.get(pk=book.pk),
                kind="deposit",
                trade_date=today - timedelta(days=10),
                amount="777",
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            written.set()
            connections.close_all()

    monkeypatch.setattr(valuation_services, "compute_from", compute_then_wait)
    threads = [threading.Thread(target=rebuild, name="rebuild"), threading.Thread(target=write, name="write")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert calls == ["rebuild", "rebuild"]  # it noticed the newer ledger and computed again
    monkeypatch.setattr(valuation_services, "compute_from", real)
    state = ValuationState.objects.get(portfolio=book)
    assert state.valued_version == state.ledger_version and state.stale_from is None
    assert valuation_services.valuations_verify(portfolio=book) == []  # the figures of the newest ledger
    assert Valuation.objects.get(portfolio=book, date=today - timedelta(days=10)).deposits == Decimal(777)
    assert Valuation.objects.get(portfolio=book, date=today).value == Decimal(1777)
