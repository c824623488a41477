"""Fee runs racing on REAL separate database connections (one per thread, released together by a
barrier): exactly one live invoice per billing group and period, numbers without a gap.

What the threads race on must be committed, so it cannot live in the usual rolled-back test
transaction (and ``transaction=True`` would flush the shared firms). The fixture commits its own
clients, accounts, schedule, groups and two approved previews of one quarter in acme's schema,
issues in a year no other test uses (``FEE-2035-...``), and deletes every row it caused
afterwards, their change history and the statements' files included.
"""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pghistory.models
import pgtrigger
import pytest
from django.apps import apps
from django.db import IntegrityError, connection, connections, transaction
from django_tenants.utils import schema_context

from codex.notifications.models import Notification
from codex.outbox.models import OutboxEvent
from crm.models import Contact
from fees import services as fee_services
from fees.models import (
    BillingGroup,
    BillingGroupAccount,
    ClientSubscription,
    FeeInvoice,
    FeeInvoiceCounter,
    FeeInvoiceLine,
    FeeRun,
    FeeSchedule,
    FeeStatement,
    Product,
)
from portfolios import services as portfolio_services
from portfolios.models import Portfolio
from portfolios.valuation_services import firm_valuations_rebuild
from tenants.accounts.models import User
from tenants.models import Tenant
from tests.fees.conftest import TIERS

YEAR = 2035
ISSUED_ON = date(YEAR, 1, 2)
Q3 = {"period_start": date(2026, 7, 1), "period_end": date(2026, 9, 30), "frequency": "quarterly"}
GROUPS = 12


def _history_delete(tracked: dict[type, list[int]]) -> None:
    """The change-history rows (django-pghistory) of the rows this module created. Event tables
    are append-only: the trigger is stepped over by name for these deletes only, as
    ``purge_history`` does (codex/history.py)."""
    for model in apps.get_models():
        if issubclass(model, pghistory.models.Event) and getattr(model, "pgh_tracked_model", None) in tracked:
            with pgtrigger.ignore(f"{model._meta.label}:append_only"):
                model.objects.filter(pgh_obj_id__in=tracked[model.pgh_tracked_model]).delete()


def _delete_everything(marker: str) -> None:
    statements = FeeStatement.objects.filter(invoice__group__name__startswith=marker)
    for statement in statements:
        statement.file.delete(save=False)
    statements.delete()
    invoices = FeeInvoice.objects.filter(group__name__startswith=marker)
    invoice_ids = list(invoices.values_list("pk", flat=True))
    FeeInvoiceLine.objects.filter(invoice_id__in=invoice_ids).delete()
    invoices.delete()
    groups = list(BillingGroup.objects.filter(name__startswith=marker).values_list("pk", flat=True))
    FeeRun.objects.filter(items__group_id__in=groups).delete()
    subs = list(ClientSubscription.objects.filter(group_id__in=groups).values_list("pk", flat=True))
    ClientSubscription.objects.filter(pk__in=subs).delete()
    BillingGroupAccount.objects.filter(group_id__in=groups).delete()
    BillingGroup.objects.filter(pk__in=groups).delete()
    products = list(Product.objects.filter(name__startswith=marker).values_list("pk", flat=True))
    Product.objects.filter(pk__in=products).delete()
    schedules = list(FeeSchedule.objects.filter(name__startswith=marker).values_list("pk", flat=True))
    versions = list(apps.get_model("fees", "FeeScheduleVersion").objects.filter(schedule_id__in=schedules))
    FeeSchedule.objects.filter(pk__in=schedules).delete()
    portfolios = list(Portfolio.objects.filter(name__startswith=marker).values_list("pk", flat=True))
    txns = list(apps.get_model("portfolios", "Transaction").objects.filter(portfolio_id__in=portfolios))
    Portfolio.objects.filter(pk__in=portfolios).delete()
    contacts = list(Contact.objects.filter(last_name__startswith=marker).values_list("pk", flat=True))
    Contact.objects.filter(pk__in=contacts).delete()
    FeeInvoiceCounter.objects.filter(year=YEAR).delete()
    # The firm's daily totals counted these accounts: sum them again from the remaining ones.
    firm_valuations_rebuild()
    _history_delete(
        {
            FeeInvoice: invoice_ids,
            BillingGroup: groups,
            ClientSubscription: subs,
            Product: products,
            FeeSchedule: schedules,
            apps.get_model("fees", "FeeScheduleVersion"): [v.pk for v in versions],
            Portfolio: portfolios,
            apps.get_model("portfolios", "Transaction"): [t.pk for t in txns],
            Contact: contacts,
        }
    )


def _row_counts() -> dict[str, int]:
    """Rows of every table of the firm's schema: the fixture leaves them as it found them."""
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [r[0] for r in cur.fetchall()]
        counts = {}
        for table in tables:
            cur.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            counts[table] = cur.fetchone()[0]
    return counts


@pytest.fixture
def committed_runs(django_db_setup, django_db_blocker):
    """Two previews of Q3 2026 over the same 12 households, both approved, committed."""
    marker = "RaceFee"
    with django_db_blocker.unblock():
        with schema_context("public"):
            firm = Tenant.objects.get(slug="acme")
        connection.set_tenant(firm)
        assert not FeeInvoiceCounter.objects.filter(year=YEAR).exists(), "a previous run leaked rows"
        before = _row_counts()
        last_event = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        last_notice = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        try:
            owner = User.objects.get(email="owner@acme.test")
            schedule = fee_services.fee_schedule_create(
                name=f"{marker} schedule", effective_from=date(2020, 1, 1), method="tiered", tiers=TIERS
            )
            product = fee_services.product_create(name=f"{marker} product", fee_schedule=schedule)
            groups = []
            for n in range(GROUPS):
                client = Contact.objects.create(first_name=f"Client {n}", last_name=f"{marker} {n}", owner=owner)
                account = Portfolio.objects.create(
                    name=f"{marker} account {n}", client=client, advisor=owner, base_currency="USD"
                )
                portfolio_services.transaction_record(
                    portfolio=account, kind="deposit", trade_date=date(2026, 6, 1), amount="1000000", currency="USD"
                )
                group = fee_services.billing_group_create(
                    name=f"{marker} household {n}", client=client, portfolios=[account]
                )
                fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
                groups.append(group)
            runs = [fee_services.fee_run_preview(**Q3) for _ in range(2)]
            for run in runs:
                fee_services.fee_run_approve(run=run, actor=owner)
            yield firm, runs, groups
        finally:
            connection.set_tenant(firm)
            _delete_everything(marker)
            # the business events the writes queued (relayed already): not this module's to keep
            OutboxEvent.objects.filter(pk__gt=last_event).delete()
            # the "fee run ready" notices the previews sent to the firm's managers, likewise
            Notification.objects.filter(pk__gt=last_notice).delete()
            after = _row_counts()
            assert {t: (before[t], n) for t, n in after.items() if before.get(t) != n} == {}
            connection.set_schema_to_public()


def _race(firm, targets):
    """Each target on its own thread and database connection, released at the same moment."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []
    results: dict[int, object] = {}

    def run(i, target):
        try:
            connection.set_tenant(firm)  # this thread's own connection
            barrier.wait()
            results[i] = target()
        except BaseException as exc:  # noqa: BLE001 (collected, then asserted empty in the test thread)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [results[i] for i in range(len(targets))]


def test_two_runs_of_one_period_issued_at_the_same_moment_invoice_each_group_once(committed_runs):
    firm, runs, groups = committed_runs
    # Both previews were computed before any invoice: every group is ready in both, so each
    # group one run leaves out below was refused by the database at issue time.
    for run in runs:
        assert all(not item.skipped and not item.problems for item in run.items.all())
        assert run.items.count() == GROUPS

    counts = _race(firm, [lambda r=run: fee_services.fee_run_issue(run=r, issued_on=ISSUED_ON) for run in runs])

    assert sum(c.ready for c in counts) == GROUPS
    assert sum(c.skipped for c in counts) == GROUPS  # the other run's attempts: refused, not issued
    live = FeeInvoice.objects.filter(group__in=groups, period_start=Q3["period_start"], period_end=Q3["period_end"])
    assert sorted(live.values_list("group_id", flat=True)) == sorted(g.pk for g in groups)  # one each
    assert all(i.total == Decimal("2520.55") for i in live)
    numbers = sorted(live.values_list("number", flat=True))
    assert numbers == [f"FEE-{YEAR}-{n:06d}" for n in range(1, GROUPS + 1)]  # no gap, none twice
    assert FeeInvoiceCounter.objects.get(year=YEAR).last_number == GROUPS


def test_the_same_run_issued_twice_at_once_issues_once(committed_runs):
    firm, runs, groups = committed_runs
    run = runs[0]
    outcomes = _race(firm, [lambda: _issue_or_refusal(run), lambda: _issue_or_refusal(run)])
    issued = [o for o in outcomes if not isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, str)]
    assert len(issued) == 1 and issued[0].ready == GROUPS
    assert refused == ["Approve the run before issuing it; it is issued."]
    assert FeeInvoice.objects.filter(group__in=groups).count() == GROUPS
    assert FeeInvoiceCounter.objects.get(year=YEAR).last_number == GROUPS


def _issue_or_refusal(run):
    from django.core.exceptions import ValidationError

    try:
        return fee_services.fee_run_issue(run=run, issued_on=ISSUED_ON)
    except ValidationError as exc:
        return " ".join(exc.messages)


def test_the_constraint_alone_keeps_one_invoice_when_two_connections_insert_at_once(committed_runs):
    """No run, no lock: two connections insert the same group's invoice for the period at the
    same moment; the partial unique constraint admits one (this is what the runs rely on)."""
    firm, _runs, groups = committed_runs
    group = groups[0]

    def insert(n):
        def target():
            try:
                with transaction.atomic():
                    FeeInvoice.objects.create(
                        number=f"RACE-{YEAR}-{n}",
                        group=group,
                        client_id=group.client_id,
                        issued_on=ISSUED_ON,
                        due_on=ISSUED_ON,
                        currency="USD",
                        total=Decimal("1.00"),
                        collection="invoice",
                        **{k: v for k, v in Q3.items() if k != "frequency"},
                    )
                return "inserted"
            except IntegrityError as exc:
                return exc.__cause__.diag.constraint_name if exc.__cause__ is not None else str(exc)

        return target

    outcomes = _race(firm, [insert(1), insert(2)])
    assert sorted(outcomes) == ["fee_invoice_once_per_group_period", "inserted"]
    assert FeeInvoice.objects.filter(group=group).count() == 1


def test_starting_an_issue_while_one_holds_the_run_answers_at_once(committed_runs):
    """The page's "Issue invoices" must not wait for an issue in progress (it holds the run's row
    lock for its whole transaction, decision 1201): it is refused at once, and queues nothing."""
    import time

    firm, runs, _ = committed_runs
    locked, finished = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def holder():
        with transaction.atomic():
            fee_services.FeeRun.objects.select_for_update().get(pk=runs[0].pk)
            locked.set()
            finished.wait(timeout=30)

    def starter():
        locked.wait(timeout=30)
        began = time.monotonic()
        try:
            fee_services.fee_run_issue_queue(run=runs[0], actor=None)
        except fee_services.FeeStateConflict as exc:
            outcome["refused"] = exc.message_dict
        finally:
            outcome["seconds"] = time.monotonic() - began
            finished.set()

    _race(firm, [holder, starter])
    assert outcome["refused"] == {"status": ["This run is being issued already."]}
    assert outcome["seconds"] < 1
