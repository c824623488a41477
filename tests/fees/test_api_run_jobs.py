"""Fee runs through the API as background jobs (decision 1351): POST /api/v1/fee-run-jobs/ answers
202 with the job's URL at once, a GET on the job shows its progress and then its result; a second
issue of a run is a 409; the synchronous operations of v1's first shape still work, deprecated."""

from __future__ import annotations

import json
from datetime import date

import pytest

from fees import services as fee_services
from fees.models import FeeInvoice, FeeRun, FeeRunJob, JobStatus
from tests.fees.conftest import account

pytestmark = pytest.mark.django_db

Q3 = {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"}
JOBS = "/api/v1/fee-run-jobs/"


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def groups(owner, client_contact, product):
    for name, amount in (("Ada", "1000000"), ("Bea", "500000")):
        portfolio = account(owner, client_contact, {date(2026, 6, 1): amount}, name=f"{name} main")
        group = fee_services.billing_group_create(name=name, client=client_contact, portfolios=[portfolio])
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))


def test_a_preview_job_answers_202_at_once_and_its_get_shows_the_result(
    owner_client, groups, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post(owner_client, JOBS, {"kind": "preview", **Q3})
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == job["url"] == f"{JOBS}{job['id']}/"
    assert (job["kind"], job["status"], job["run"], job["result"]) == ("preview", "queued", None, {})
    assert not FeeRun.objects.exists() and len(queued) == 1  # nothing computed in the request

    assert owner_client.get(job["url"]).json()["status"] == "queued"
    queued[0]()  # the worker
    done = owner_client.get(job["url"]).json()
    run = FeeRun.objects.get()
    assert (done["status"], done["run"], done["run_url"]) == ("done", run.pk, f"/api/v1/fee-runs/{run.pk}/")
    assert done["result"] == {"run": run.pk, "groups": 2} and done["progress"] is None
    assert "Preview of 2 billing group(s) computed" in done["message"]
    assert owner_client.get(done["run_url"]).json()["items"][0]["total"]  # the run it made, as before
    listed = owner_client.get(JOBS).json()
    assert [j["id"] for j in listed["results"]] == [job["id"]]


def test_a_running_jobs_get_shows_its_progress(owner, owner_client, groups, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = post(owner_client, JOBS, {"kind": "preview", **Q3}).json()
    FeeRunJob.objects.filter(pk=job["id"]).update(status=JobStatus.RUNNING)
    fee_services._progress_writer(job["id"])(1, 2)  # what the preview reports as it goes
    assert owner_client.get(job["url"]).json()["progress"] == {"done": 1, "total": 2}


def test_an_issue_job_ends_with_the_counts_the_old_issue_answered_and_a_second_is_a_409(
    owner, owner_client, groups, django_capture_on_commit_callbacks
):
    run = fee_services.fee_run_approve(
        run=fee_services.fee_run_preview(
            period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
        ),
        actor=owner,
    )
    body = {"kind": "issue", "run": run.pk, "issued_on": "2026-10-01"}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = post(owner_client, JOBS, body)
    assert first.status_code == 202, first.content
    second = post(owner_client, JOBS, body)
    assert second.status_code == 409
    assert second.json()["error"]["details"]["status"] == ["This run is being issued already."]
    assert FeeRunJob.objects.filter(run=run).count() == 1 and not FeeInvoice.objects.exists()

    queued[0]()
    done = owner_client.get(first.json()["url"]).json()
    assert done["status"] == "done"
    assert done["result"] == {"run": run.pk, "groups": 2, "ready": 2, "with_problems": 0, "skipped": 0}
    assert FeeInvoice.objects.filter(run=run).count() == 2
    again = post(owner_client, JOBS, body)  # issued now: refused as the run is no longer approved
    assert again.status_code == 409 and "it is issued" in str(again.json()["error"]["details"]["status"])


def test_bad_job_requests_are_refused_naming_the_field(owner_client, groups):
    missing = post(owner_client, JOBS, {"kind": "preview", "period_start": "2026-07-01"})
    assert missing.status_code == 400
    assert {"period_end", "frequency"} <= set(missing.json()["error"]["details"])
    bad_period = post(owner_client, JOBS, {"kind": "preview", **Q3, "period_end": "2026-09-29"})
    assert bad_period.status_code == 400 and "period_end" in bad_period.json()["error"]["details"]
    no_run = post(owner_client, JOBS, {"kind": "issue"})
    assert no_run.status_code == 400 and "run" in no_run.json()["error"]["details"]
    unknown = post(owner_client, JOBS, {"kind": "issue", "run": 999_999})
    assert unknown.status_code == 404
    no_kind = post(owner_client, JOBS, {"run": 1})
    assert no_kind.status_code == 400 and "kind" in no_kind.json()["error"]["details"]
    assert post(owner_client, JOBS, {}).status_code == 400
    preview = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    not_approved = post(owner_client, JOBS, {"kind": "issue", "run": preview.pk})
    assert not_approved.status_code == 409
    assert "Approve the run before issuing it" in str(not_approved.json()["error"]["details"]["status"])
    assert not FeeRunJob.objects.exists()


def test_roles_viewers_read_advisors_and_viewers_cannot_start(
    owner_client, viewer_client, advisor_client, groups, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = post(owner_client, JOBS, {"kind": "preview", **Q3}).json()
    assert viewer_client.get(job["url"]).status_code == 200
    assert post(viewer_client, JOBS, {"kind": "preview", **Q3}).status_code == 403
    assert advisor_client.get(job["url"]).status_code == 403
    assert post(advisor_client, JOBS, {"kind": "preview", **Q3}).status_code == 403
    assert FeeRunJob.objects.count() == 1


def test_another_firm_cannot_read_the_job(owner_client, outsider_client, groups, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = post(owner_client, JOBS, {"kind": "preview", **Q3}).json()
    assert owner_client.get(job["url"]).status_code == 200
    assert outsider_client.get(job["url"]).status_code == 404
    assert outsider_client.get(JOBS).json()["results"] == []


def test_the_old_synchronous_run_still_answers_as_before_with_deprecation_headers(owner_client, groups):
    response = post(owner_client, "/api/v1/fee-runs/", Q3)
    assert response.status_code == 201 and len(response.json()["items"]) == 2
    assert response["Deprecation"] == "@1796601600"  # 2026-12-07 (RFC 9745)
    assert response["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert "/fee-run-jobs/" in response["Link"]
    pk = response.json()["id"]
    post(owner_client, f"/api/v1/fee-runs/{pk}/approve/", {})
    issued = post(owner_client, f"/api/v1/fee-runs/{pk}/issue/", {"issued_on": "2026-10-01"})
    assert issued.json() == {"groups": 2, "ready": 2, "with_problems": 0, "skipped": 0}
    assert issued["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert "Deprecation" not in owner_client.get(f"/api/v1/fee-runs/{pk}/")  # reading runs is current


def test_the_job_list_query_count_does_not_grow_with_jobs(owner, owner_client, groups):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def make_job():
        fee_services.fee_run_preview_queue(
            period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly", actor=owner
        )

    def listed() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(JOBS).status_code == 200
        return len(queries)

    make_job()
    listed()  # the first request of a session reads what later ones find cached
    one = listed()
    for _ in range(4):
        make_job()
    assert listed() == one
    assert owner_client.get(JOBS).json()["count"] == 5
