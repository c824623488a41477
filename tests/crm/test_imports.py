"""CRM imports through the shared engine: upload, map, preview, commit all or nothing, report."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Company, Contact, ImportJob

from .factories import ContactFactory

API = "/api/v1"

CSV = (
    "First Name,Surname,E-mail,Company,Tags,Lifecycle\n"
    "Ada,Lovelace,ada@example.com,Analytical Ltd,vip;math,client\n"
    "Alan,Turing,ALAN@example.com,Analytical Ltd,,prospect\n"
)


def _file(text=CSV, name="contacts.csv"):
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def test_upload_automaps_previews_and_commits_via_the_api(owner_client, owner):
    ContactFactory(email="alan@example.com", first_name="A.", last_name="", job_title="")
    r = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["mapping"] == {
        "First Name": "first_name",
        "Surname": "last_name",
        "E-mail": "email",
        "Company": "company",
        "Tags": "tags",
        "Lifecycle": "lifecycle",
    }
    assert body["preview"]["counts"] == {"create": 1, "update": 0, "merge": 0, "skip": 1, "error": 0}
    r = owner_client.post(
        f"{API}/imports/{body['id']}/preview/", {"duplicates": "merge"}, content_type="application/json"
    )
    assert r.json()["preview"]["counts"]["merge"] == 1
    r = owner_client.post(f"{API}/imports/{body['id']}/commit/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "committed"
    assert r.json()["report"] == {"created": 1, "updated": 0, "merged": 1, "skipped": 0, "errors": []}
    ada = Contact.objects.get(email="ada@example.com")
    assert ada.tags == ["vip", "math"] and ada.company.name == "Analytical Ltd" and ada.owner == owner
    alan = Contact.objects.get(email="alan@example.com")
    assert alan.first_name == "A." and alan.last_name == "Turing"  # merge fills blanks only
    assert alan.company == ada.company and Company.objects.filter(name="Analytical Ltd").count() == 1
    # committing twice is refused: a conflict with the import's state (409)
    assert owner_client.post(f"{API}/imports/{body['id']}/commit/").status_code == 409


def test_bad_rows_block_the_whole_import(owner_client):
    text = CSV + ",NoFirst,x@example.com,,,\nEve,Bad,not-an-email,,,alien\n"
    r = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file(text)})
    errors = r.json()["preview"]["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {(4, "first_name"), (5, "email"), (5, "lifecycle")}
    r = owner_client.post(f"{API}/imports/{r.json()['id']}/commit/")
    assert r.status_code == 400 and "row 4, first_name" in r.json()["error"]["message"]
    assert Contact.objects.count() == 0 and Company.objects.count() == 0


def test_mapping_errors_are_field_errors(owner_client):
    r = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()})
    job = r.json()["id"]
    r = owner_client.post(
        f"{API}/imports/{job}/preview/",
        {"mapping": {"First Name": "", "Surname": "last_name"}},
        content_type="application/json",
    )
    assert r.status_code == 400 and "mapping" in r.json()["error"]["details"]


def test_wrong_file_type_is_a_field_error(owner_client):
    r = owner_client.post(
        f"{API}/imports/",
        {"kind": "contacts", "file": SimpleUploadedFile("x.png", b"\x89PNG", content_type="image/png")},
    )
    assert r.status_code == 400 and "file" in r.json()["error"]["details"]
    assert not ImportJob.objects.exists()


def test_plan_limit_applies_to_imported_contacts(owner_client, monkeypatch):
    from billing import entitlements
    from crm.services import imports as import_services

    def full(*, tenant, resource, adding=1):
        if adding > 1:
            raise entitlements.PlanLimitExceeded("too many", limit=resource, allowed=1, used=0)

    monkeypatch.setattr(import_services, "check_can_add", full)
    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    r = owner_client.post(f"{API}/imports/{job}/commit/")
    assert r.status_code == 402 and Contact.objects.count() == 0


def test_import_through_the_pages(owner_client, django_capture_on_commit_callbacks):
    r = owner_client.post("/crm/import/", {"kind": "contacts", "file": _file()})
    assert r.status_code == 302
    job = ImportJob.objects.get()
    page = owner_client.get(r["Location"]).content.decode()
    assert "Will create <strong>2</strong>" in page and "Ada" in page
    cols = {f"col_{i}": v for i, v in enumerate(["first_name", "last_name", "email", "", "", "lifecycle"])}
    r = owner_client.post(f"/crm/import/{job.pk}/", {"duplicates": "skip", **cols})
    assert r.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the background job runs when the request commits
        r = owner_client.post(f"/crm/import/{job.pk}/commit/")
    assert r.status_code == 302
    assert "Imported: 2 created" in owner_client.get(r["Location"]).content.decode()
    assert Contact.objects.count() == 2 and Company.objects.count() == 0  # company column not imported


def test_the_commit_runs_in_the_background_and_the_page_says_when_it_is_done(
    owner_client, owner, django_capture_on_commit_callbacks
):
    from codex.notifications.models import Notification

    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        r = owner_client.post(f"/crm/import/{job}/commit/")
    assert r.status_code == 302 and len(queued) == 1
    assert ImportJob.objects.get(pk=job).status == "importing" and Contact.objects.count() == 0
    page = owner_client.get(r["Location"]).content.decode()
    assert "<progress data-import-progress" in page and 'http-equiv="refresh"' in page
    # a second commit (the API, another tab) while it runs is a conflict, not a second import
    assert owner_client.post(f"{API}/imports/{job}/commit/").status_code == 409
    queued[0]()  # the worker runs the job
    assert ImportJob.objects.get(pk=job).status == "committed" and Contact.objects.count() == 2
    page = owner_client.get(r["Location"]).content.decode()
    assert "Imported: 2 created" in page and "<progress" not in page and 'http-equiv="refresh"' not in page
    assert "Imported: 2 created" not in owner_client.get(r["Location"]).content.decode()  # said once
    assert Notification.objects.filter(recipient=owner, title="Import of contacts finished").count() == 1


def test_a_background_commit_that_is_refused_writes_nothing_and_says_why(
    owner_client, owner, monkeypatch, django_capture_on_commit_callbacks
):
    from billing import entitlements
    from codex.notifications.models import Notification
    from crm.services import imports as import_services

    def full(*, tenant, resource, adding=1):
        raise entitlements.PlanLimitExceeded("Your plan allows 1 contact.", limit=resource, allowed=1, used=0)

    monkeypatch.setattr(import_services, "check_can_add", full)
    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        r = owner_client.post(f"/crm/import/{job}/commit/")
    stored = ImportJob.objects.get(pk=job)
    assert stored.status == "pending" and "Your plan allows 1 contact." in stored.report["error"]
    assert Contact.objects.count() == 0
    page = owner_client.get(r["Location"]).content.decode()
    assert "Not imported: Your plan allows 1 contact." in page and "Will create <strong>2</strong>" in page
    assert Notification.objects.filter(recipient=owner, title="Import of contacts not done").count() == 1


def test_another_firm_cannot_start_or_watch_an_import(owner_client, outsider_client):
    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    assert outsider_client.post(f"/crm/import/{job}/commit/").status_code == 404
    assert outsider_client.get(f"/crm/import/{job}/").status_code == 404
    assert ImportJob.objects.get(pk=job).status == "pending"


def test_upload_error_is_shown_inline(owner_client):
    r = owner_client.post("/crm/import/", {"kind": "contacts", "file": _file("", name="empty.csv")})
    assert r.status_code == 400


def test_other_firm_cannot_commit_an_import(owner_client, outsider_client):
    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    assert outsider_client.post(f"{API}/imports/{job}/commit/").status_code == 404
    assert Contact.objects.count() == 0


def test_advisor_only_sees_own_imports_and_owns_imported_rows(advisor_client, advisor, owner_client):
    owner_job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    assert advisor_client.get(f"{API}/imports/{owner_job}/").status_code == 404
    job = advisor_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    assert advisor_client.post(f"{API}/imports/{job}/commit/").status_code == 200
    assert set(Contact.objects.values_list("owner_id", flat=True)) == {advisor.pk}


def test_companies_import(owner_client):
    text = "Name,Industry,Domain\nGlobex,Energy,globex.com\nInitech,Software,\n"
    job = owner_client.post(f"{API}/imports/", {"kind": "companies", "file": _file(text)}).json()
    assert job["preview"]["counts"]["create"] == 2
    assert owner_client.post(f"{API}/imports/{job['id']}/commit/").json()["report"]["created"] == 2
    assert Company.objects.get(name="Globex").industry == "Energy"


def _pending_pages(index: str) -> int:
    """Pages in the GIN index's pending list, merged by the call (so it also empties it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        return cursor.fetchone()[0]


def test_import_commit_leaves_no_pending_entries_in_the_search_indexes(firm, owner):
    """New rows wait in the GIN indexes' pending lists, read linearly by every search, until
    merged: the commit merges them (decision 0202) instead of leaving it to autovacuum."""
    from crm import services
    from crm.imports import SEARCH_INDEXES

    from .factories import CompanyFactory

    # positive control: an ordinary write leaves pending entries in every one of these indexes
    ContactFactory(first_name="Grace", last_name="Hopper", company=CompanyFactory(name="Navy Labs"))
    assert all(_pending_pages(index) > 0 for index in SEARCH_INDEXES["contacts"])
    for kind, text in (("contacts", CSV), ("companies", "Name,Industry\nGlobex Quantum,Energy\n")):
        job = services.import_start(actor=owner, tenant=firm, kind=kind, upload=_file(text))
        services.import_configure(actor=owner, job=job, duplicates="skip")
        assert services.import_commit(actor=owner, tenant=firm, job=job)["created"] >= 1
        assert {index: _pending_pages(index) for index in SEARCH_INDEXES[kind]} == dict.fromkeys(
            SEARCH_INDEXES[kind], 0
        )
    assert Contact.objects.filter(email="ada@example.com", company__name="Analytical Ltd").exists()


def _queued_job(owner_client, django_capture_on_commit_callbacks):
    job = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": _file()}).json()["id"]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        r = owner_client.post(f"/crm/import/{job}/commit/")
    assert r.status_code == 302 and len(queued) == 1
    return ImportJob.objects.get(pk=job), queued[0]


def test_a_job_whose_worker_died_is_swept_back_to_pending_and_says_why(
    owner_client, owner, settings, caplog, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from codex.notifications.models import Notification
    from crm.services.imports import import_jobs_sweep

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    job, lost_task = _queued_job(owner_client, django_capture_on_commit_callbacks)
    assert job.status == "importing" and job.heartbeat_at is not None
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1801))
    with caplog.at_level("ERROR", logger="crm.services.imports"):
        assert import_jobs_sweep() == [job.pk]
    job.refresh_from_db()
    assert job.status == "pending" and "gave no sign of life" in job.report["error"]
    assert Contact.objects.count() == 0 and len(job.rows) == 2  # nothing written; the rows kept for a retry
    assert any(f"import job {job.pk}" in r.getMessage() and "swept" in r.getMessage() for r in caplog.records)
    assert Notification.objects.filter(recipient=owner, title="Import of contacts not done").count() == 1
    page = owner_client.get(f"/crm/import/{job.pk}/").content.decode()
    assert "The import stopped: its background worker gave no sign of life" in page
    assert "<progress" not in page and 'http-equiv="refresh"' not in page
    assert import_jobs_sweep() == []  # idempotent
    lost_task()  # a late delivery of the lost task finds the job pending: it writes nothing
    assert ImportJob.objects.get(pk=job.pk).status == "pending" and Contact.objects.count() == 0
    # the member presses Import again: it runs
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"/crm/import/{job.pk}/commit/")
    assert ImportJob.objects.get(pk=job.pk).status == "committed" and Contact.objects.count() == 2


def test_a_job_with_a_recent_heartbeat_is_left_running(owner_client, settings, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from crm.services.imports import import_jobs_sweep

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    job, task = _queued_job(owner_client, django_capture_on_commit_callbacks)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1790))
    assert import_jobs_sweep() == []
    assert ImportJob.objects.get(pk=job.pk).status == "importing"
    task()  # the worker takes it up: a fresh heartbeat, then the commit
    job.refresh_from_db()
    assert job.status == "committed" and job.heartbeat_at > timezone.now() - timedelta(seconds=60)


def test_the_sweep_of_one_firm_leaves_another_firms_jobs_alone(
    owner_client, outsider_client, other_firm, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from crm.services.imports import import_jobs_sweep

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    job, _task = _queued_job(owner_client, django_capture_on_commit_callbacks)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    assert outsider_client.get(f"/crm/import/{job.pk}/").status_code == 404
    with schema_context(other_firm.schema_name):
        assert import_jobs_sweep() == []
    assert ImportJob.objects.get(pk=job.pk).status == "importing"
    assert import_jobs_sweep() == [job.pk]
