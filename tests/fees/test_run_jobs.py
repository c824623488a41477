"""Fee runs started on the pages run as background jobs (decision 1201): the request returns at
once with a job, the page shows a progress bar and, when the job ends, a notice; a failure shows
its error and writes nothing; exactly once still holds."""

from __future__ import annotations

from datetime import date

import pytest

from codex.notifications.models import Notification
from fees import services as fee_services
from fees.models import FeeInvoice, FeeRun, FeeRunJob, JobKind, JobStatus, RunStatus
from tests.fees.conftest import account

pytestmark = pytest.mark.django_db

Q3 = {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"}


@pytest.fixture
def groups(owner, client_contact, product):
    out = []
    for name, amount in (("Ada", "1000000"), ("Bea", "500000")):
        portfolio = account(owner, client_contact, {date(2026, 6, 1): amount}, name=f"{name} main")
        group = fee_services.billing_group_create(name=name, client=client_contact, portfolios=[portfolio])
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
        out.append(group)
    return out


def test_the_preview_request_returns_a_job_and_the_page_shows_its_progress(
    owner, owner_client, groups, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = owner_client.post("/fees/runs/", Q3)
    assert response.status_code == 302 and response["Location"] == "/fees/runs/"
    job = FeeRunJob.objects.get()
    assert (job.kind, job.status, job.created_by_id) == (JobKind.PREVIEW, JobStatus.QUEUED, owner.pk)
    assert not FeeRun.objects.exists()  # nothing computed in the request
    assert len(queued) == 1  # the job, queued on commit
    page = owner_client.get("/fees/runs/").content.decode()
    assert "data-fee-run-progress" in page and 'http-equiv="refresh"' in page

    queued[0]()  # the worker runs it
    job.refresh_from_db()
    run = FeeRun.objects.get()
    assert job.status == JobStatus.DONE and job.run_id == run.pk and job.finished_at is not None
    assert run.items.count() == 2
    assert fee_services.fee_run_job_progress(job=job) == (2, 2)
    notice = Notification.objects.get(recipient=owner, source=f"fee-run-job:{job.pk}")
    assert "finished" in notice.title and notice.url == f"/fees/runs/{run.pk}/"
    done = owner_client.get("/fees/runs/")
    assert done.status_code == 302 and done["Location"] == f"/fees/runs/{run.pk}/"
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "Preview of 2 billing group(s) computed" in page and "data-fee-run-progress" not in page


def test_the_issue_runs_in_the_background_and_ends_with_a_notice(
    owner, owner_client, groups, django_capture_on_commit_callbacks
):
    run = fee_services.fee_run_preview(
        actor=owner, period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = owner_client.post(f"/fees/runs/{run.pk}/issue/")
    assert response.status_code == 302 and not FeeInvoice.objects.exists()
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "Issuing the invoices" in page and "Issue invoices</button>" not in page
    # a second click while it runs is refused: one issue job per run
    owner_client.post(f"/fees/runs/{run.pk}/issue/")
    assert FeeRunJob.objects.filter(run=run, kind=JobKind.ISSUE).count() == 1
    queued[0]()
    job = FeeRunJob.objects.get(run=run, kind=JobKind.ISSUE)
    assert job.status == JobStatus.DONE and job.message.startswith("2 invoice(s) issued")
    assert FeeInvoice.objects.count() == 2
    assert Notification.objects.filter(recipient=owner, source=f"fee-run-job:{job.pk}").exists()
    assert "2 invoice(s) issued" in owner_client.get(f"/fees/runs/{run.pk}/").content.decode()


def test_a_failing_issue_shows_the_error_and_writes_nothing(
    owner, owner_client, groups, monkeypatch, django_capture_on_commit_callbacks
):
    run = fee_services.fee_run_preview(
        actor=owner, period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    real = fee_services._issue_item
    calls = []

    def second_group_breaks(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("statement store unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(fee_services, "_issue_item", second_group_breaks)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        owner_client.post(f"/fees/runs/{run.pk}/issue/")
    with pytest.raises(RuntimeError):
        queued[0]()  # raised again for the worker's log, after being recorded
    job = FeeRunJob.objects.get(run=run, kind=JobKind.ISSUE)
    assert job.status == JobStatus.FAILED and "statement store unreachable" in job.message
    assert not FeeInvoice.objects.exists()  # the first group's invoice rolled back with the rest
    run.refresh_from_db()
    assert run.status == RunStatus.APPROVED  # so it can be issued again
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "statement store unreachable" in page and "Issue invoices" in page
    monkeypatch.setattr(fee_services, "_issue_item", real)
    counts = fee_services.fee_run_issue(run=run, actor=owner, issued_on=date(2026, 10, 1))
    assert counts.ready == 2
    assert sorted(FeeInvoice.objects.values_list("number", flat=True)) == ["FEE-2026-000001", "FEE-2026-000002"]


def test_a_refused_issue_ends_the_job_failed_with_the_reason(
    owner, owner_client, groups, django_capture_on_commit_callbacks
):
    run = fee_services.fee_run_preview(
        actor=owner, period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        owner_client.post(f"/fees/runs/{run.pk}/issue/")
    fee_services.fee_run_issue(run=run, actor=owner)  # issued meanwhile by the API
    queued[0]()
    job = FeeRunJob.objects.get(run=run, kind=JobKind.ISSUE)
    assert job.status == JobStatus.FAILED and "it is issued" in job.message
    assert FeeInvoice.objects.count() == 2  # exactly once
    notice = Notification.objects.get(recipient=owner, source=f"fee-run-job:{job.pk}")
    assert "failed" in notice.title


def test_a_job_delivered_twice_runs_once(owner, groups):
    job = fee_services.fee_run_preview_queue(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly", actor=owner
    )
    assert fee_services.fee_run_job_perform(job_id=job.pk)["status"] == JobStatus.DONE
    assert fee_services.fee_run_job_perform(job_id=job.pk) == {"job": job.pk, "skipped": True}
    assert FeeRun.objects.count() == 1


def test_a_bad_period_is_refused_before_any_job(owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        fee_services.fee_run_preview_queue(
            period_start=date(2026, 7, 1), period_end=date(2026, 9, 29), frequency="quarterly", actor=owner
        )
    assert "period_end" in exc.value.message_dict and not FeeRunJob.objects.exists()


def test_a_job_whose_worker_was_lost_is_swept_failed_and_a_late_delivery_does_nothing(
    owner, owner_client, groups, settings, caplog, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    with django_capture_on_commit_callbacks(execute=False) as queued:
        owner_client.post("/fees/runs/", Q3)
    job = FeeRunJob.objects.get()
    assert job.status == JobStatus.QUEUED and job.heartbeat_at is not None
    FeeRunJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1801))
    with caplog.at_level("ERROR", logger="fees.services"):
        assert fee_services.fee_run_jobs_sweep() == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "gave no sign of life" in job.message and job.finished_at
    assert any(
        f"fee run job {job.pk} in schema" in r.getMessage() and "swept" in r.getMessage() for r in caplog.records
    )
    notice = Notification.objects.get(recipient=owner, source=f"fee-run-job:{job.pk}")
    assert "failed" in notice.title
    assert fee_services.fee_run_jobs_sweep() == []  # idempotent
    queued[0]()  # the lost task delivered late: the job is no longer queued, nothing is computed
    assert FeeRunJob.objects.get(pk=job.pk).status == JobStatus.FAILED and not FeeRun.objects.exists()
    page = owner_client.get("/fees/runs/").content.decode()
    assert "gave no sign of life" in page and "data-fee-run-progress" not in page


def test_a_job_with_a_recent_sign_of_life_is_left_to_run(owner, groups, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    job = fee_services.fee_run_preview_queue(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly", actor=owner
    )
    FeeRunJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1790))
    assert fee_services.fee_run_jobs_sweep() == []
    assert fee_services.fee_run_job_perform(job_id=job.pk)["status"] == JobStatus.DONE
    job.refresh_from_db()
    assert job.heartbeat_at > timezone.now() - timedelta(seconds=60)  # refreshed when a worker took it
