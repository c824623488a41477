"""The stale-job sweep (codex.stale_jobs, decisions 1220 and 1352) against a REAL second database
connection: a job silent past the limit whose row its worker holds (``SELECT ... FOR UPDATE`` in
an open transaction, as a live import or fee run does for as long as it works) is skipped, not
ended; once the worker lets go, the same job is swept. One case per kind of job.

The rows must be committed for the worker's connection to lock them, so they cannot live in the
usual rolled-back test transaction (and ``transaction=True`` would flush the shared firms): the
fixture commits them in acme's schema and deletes every row it caused afterwards, as
tests/fees/test_concurrent_runs.py does.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.notifications.models import Notification
from crm.models import Contact, ImportJob, ImportStatus
from crm.services.imports import import_jobs_sweep
from fees.models import FeeRunJob, JobKind, JobStatus
from fees.services import fee_run_jobs_sweep
from portfolios.imports import ledger_imports_sweep
from portfolios.models import LedgerImport, LedgerImportStatus, Portfolio
from tenants.accounts.models import User
from tenants.models import Tenant
from tests.fees.test_concurrent_runs import _history_delete, _row_counts

MARKER = "SweepLock"
SWEEPS = {
    "crm import": (ImportJob, import_jobs_sweep, ImportStatus.IMPORTING),
    "ledger import": (LedgerImport, ledger_imports_sweep, LedgerImportStatus.IMPORTING),
    "fee run": (FeeRunJob, fee_run_jobs_sweep, JobStatus.RUNNING),
}


@pytest.fixture
def stale_jobs(django_db_setup, django_db_blocker, settings):
    """One job of each kind, active, its last sign of life two hours ago, committed."""
    settings.IMPORT_JOB_STALE_SECONDS = 1800
    with django_db_blocker.unblock():
        with schema_context("public"):
            firm = Tenant.objects.get(slug="acme")
        connection.set_tenant(firm)
        before = _row_counts()
        last_notice = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        contact = portfolio = None
        jobs: dict[str, object] = {}
        try:
            owner = User.objects.get(email="owner@acme.test")
            silent_since = timezone.now() - timedelta(hours=2)
            contact = Contact.objects.create(first_name="Stale", last_name=MARKER, owner=owner)
            portfolio = Portfolio.objects.create(
                name=f"{MARKER} account", client=contact, advisor=owner, base_currency="USD"
            )
            jobs["crm import"] = ImportJob.objects.create(
                kind="contacts", status=ImportStatus.IMPORTING, created_by=owner, heartbeat_at=silent_since
            )
            jobs["ledger import"] = LedgerImport.objects.create(
                portfolio=portfolio, status=LedgerImportStatus.IMPORTING, created_by=owner, heartbeat_at=silent_since
            )
            jobs["fee run"] = FeeRunJob.objects.create(
                kind=JobKind.PREVIEW,
                status=JobStatus.RUNNING,
                period_start=date(2026, 7, 1),
                period_end=date(2026, 9, 30),
                frequency="quarterly",
                created_by=owner,
                heartbeat_at=silent_since,
            )
            yield firm, jobs
        finally:
            connection.set_tenant(firm)
            for kind, job in jobs.items():
                SWEEPS[kind][0].objects.filter(pk=job.pk).delete()
            tracked: dict[type, list[int]] = {}
            if portfolio is not None:
                Portfolio.objects.filter(pk=portfolio.pk).delete()
                tracked[Portfolio] = [portfolio.pk]
            if contact is not None:
                Contact.objects.filter(pk=contact.pk).delete()
                tracked[Contact] = [contact.pk]
            _history_delete(tracked)
            Notification.objects.filter(pk__gt=last_notice).delete()  # the sweeps' notices to the owner
            after = _row_counts()
            assert {t: (before[t], n) for t, n in after.items() if before.get(t) != n} == {}
            connection.set_schema_to_public()


@pytest.mark.parametrize("kind", list(SWEEPS))
def test_a_live_job_whose_row_its_worker_holds_is_skipped_not_swept(stale_jobs, kind):
    firm, jobs = stale_jobs
    model, sweep, active_status = SWEEPS[kind]
    job = jobs[kind]
    holding, let_go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def worker():
        """What a live job's work does: lock its own row in a transaction for as long as it runs."""
        try:
            connection.set_tenant(firm)  # this thread's own connection
            with transaction.atomic():
                assert [j.pk for j in model.objects.select_for_update().filter(pk=job.pk)] == [job.pk]
                holding.set()
                let_go.wait(timeout=60)
        except BaseException as exc:  # noqa: BLE001 (collected, then asserted empty in the test thread)
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert holding.wait(timeout=60), errors
        assert sweep() == []  # silent for two hours, but its worker holds it: alive
        assert model.objects.get(pk=job.pk).status == active_status
    finally:
        let_go.set()
        thread.join()
    assert not errors, errors
    # The worker gone without a word (its lock released with its connection): now it is swept.
    assert sweep() == [job.pk]
    assert model.objects.get(pk=job.pk).status != active_status
    assert sweep() == []  # idempotent
