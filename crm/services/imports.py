"""The CSV import of contacts, companies and deals: start, configure, commit, cancel."""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from billing.entitlements import PlanLimitExceeded, check_can_add, check_feature
from codex import imports as engine
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.outbox.services import event_emit
from codex.stale_jobs import StaleNotice, silence, stale_jobs_sweep

from .. import access, events
from ..imports import SPECS, search_indexes_merge
from ..models import ImportJob, ImportStatus
from .common import StateConflict, _actor_user

logger = logging.getLogger(__name__)

# --- imports ----------------------------------------------------------------------------------------


def import_start(*, actor, tenant, kind: str, upload) -> ImportJob:
    """Read an uploaded CSV (codex.imports.read_csv: size, type, encoding) and keep it as a pending
    job with an automatic column mapping. Raises ImportFileError for an unreadable file."""

    access.require_write(actor)
    if kind not in SPECS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(SPECS)}."})
    check_feature(tenant=tenant, feature="imports")
    parsed = engine.read_csv(upload)
    spec = SPECS[kind](actor=actor)
    return ImportJob.objects.create(
        kind=kind,
        filename=getattr(upload, "name", "")[:255],
        encoding=parsed.encoding,
        headers=parsed.headers,
        rows=parsed.rows,
        mapping=engine.auto_map(parsed.headers, spec),
        created_by=_actor_user(actor),
    )


def import_configure(*, actor, job: ImportJob, mapping: dict | None = None, duplicates: str | None = None):
    """Set the column mapping and the duplicates mode of a pending job and return its preview."""

    access.require_write(actor)
    if job.status != ImportStatus.PENDING:
        raise StateConflict({"status": "This import is finished."})
    spec = SPECS[job.kind](actor=actor)
    if mapping is not None:
        mapping = {h: (mapping.get(h) or "") for h in job.headers}
        errors = engine.validate_mapping(job.headers, mapping, spec)
        if errors:
            raise ValidationError({"mapping": [f"{k}: {v}" if k != "__all__" else v for k, v in errors.items()]})
        job.mapping = mapping
    if duplicates is not None:
        if duplicates not in engine.DuplicateMode.values:
            raise ValidationError({"duplicates": "Choose skip, update or merge."})
        job.duplicates = duplicates
    job.save(update_fields=["mapping", "duplicates"])
    errors = engine.validate_mapping(job.headers, job.mapping, spec)
    if errors:
        raise ValidationError({"mapping": [v if k == "__all__" else f"{k}: {v}" for k, v in errors.items()]})
    return engine.preview(spec, job.headers, job.rows, job.mapping, duplicates=job.duplicates)


def import_commit(*, actor, tenant, job: ImportJob, queued: bool = False) -> dict:
    """Write the whole job or nothing (codex.imports.commit). Checks the plan's contact limit for
    the rows it creates. On row errors raises ImportRejected and the job stays pending; on success
    stores the report (created/updated/merged/skipped) and marks the job committed. ``queued``:
    the background job of ``import_commit_queue`` (the job is ``importing``, not pending)."""

    access.require_write(actor)
    spec = SPECS[job.kind](actor=actor)

    def before_write(preview):
        if job.kind == "contacts":
            check_can_add(tenant=tenant, resource="contacts", adding=preview.counts["create"])

    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status == ImportStatus.IMPORTING and not queued:
            raise StateConflict({"status": "This import is being imported in the background."})
        if job.status != (ImportStatus.IMPORTING if queued else ImportStatus.PENDING):
            raise StateConflict({"status": "This import was already committed."})
        mapping_errors = engine.validate_mapping(job.headers, job.mapping, spec)
        if mapping_errors:
            raise ValidationError({"mapping": list(mapping_errors.values())})
        report = engine.commit(
            spec, job.headers, job.rows, job.mapping, duplicates=job.duplicates, before_write=before_write
        )
        # the new rows' search entries into the GIN trees now, not when autovacuum comes by
        search_indexes_merge(job.kind)
        event_emit(type="import.completed", data=events.import_data(job), resource=f"import:{job.pk}")
        job.status = ImportStatus.COMMITTED
        job.committed_at = timezone.now()
        job.report = report.as_dict()
        job.rows = []  # the data now lives in the CRM; do not keep a second copy
        job.save(update_fields=["status", "committed_at", "report", "rows"])
        notification_send(
            recipients=[actor],
            kind=NotificationKind.IMPORT,
            title=f"Import of {job.kind} finished",
            body=", ".join(f"{n} {what}" for what, n in job.report.items() if isinstance(n, int)),
            url=f"/crm/{job.kind}/",
            source=f"import:{job.pk}",
        )
    return job.report


def import_commit_queue(*, actor, tenant, job: ImportJob) -> ImportJob:
    """Start the commit of a pending job as a background job (decision 1001): the same checks
    as ``import_commit`` that need no row (write access, still pending, mapping complete), then
    the job is ``importing`` and ``crm.tasks.import_commit_job`` is queued when this commits. The
    job ends committed with its report, or pending again with the reason in ``report["error"]``
    (``import_commit_finish``); the starter gets a notification either way. Raises
    ``StateConflict`` (not pending) or ``ValidationError`` (mapping) and queues nothing."""
    from ..tasks import import_commit_job  # tasks call back into these services

    access.require_write(actor)
    spec = SPECS[job.kind](actor=actor)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportStatus.PENDING:
            raise StateConflict({"status": "This import is not waiting for review any more."})
        mapping_errors = engine.validate_mapping(job.headers, job.mapping, spec)
        if mapping_errors:
            raise ValidationError({"mapping": list(mapping_errors.values())})
        job.status = ImportStatus.IMPORTING
        job.heartbeat_at = timezone.now()
        job.report = {"queued_at": job.heartbeat_at.isoformat()}
        job.save(update_fields=["status", "report", "heartbeat_at"])
        transaction.on_commit(partial(import_commit_job.delay, job_id=job.pk, actor_id=actor.pk))
    return job


def import_commit_finish(*, job_id: int, actor_id: int, tenant) -> dict:
    """The background half of ``import_commit_queue``: commit the job as the member who started
    it. What refuses the import (a row error found against today's data, the plan's limit, a
    mapping, the member's rights gone) puts the job back to pending with the reason in
    ``report["error"]`` and tells the member; nothing is written then. A job that is no longer
    ``importing`` (already done by an earlier delivery) is left alone. Database errors propagate
    (the task retries)."""
    from tenants.accounts.models import User

    # A sign of life before the commit's transaction (decision 1220): the sweep leaves this job alone.
    if not ImportJob.objects.filter(pk=job_id, status=ImportStatus.IMPORTING).update(heartbeat_at=timezone.now()):
        return {"job": job_id, "skipped": True}
    job = ImportJob.objects.get(pk=job_id)
    actor = User.objects.filter(pk=actor_id, is_active=True).first()
    queued_at = job.report.get("queued_at", "")
    try:
        if actor is None:
            raise PermissionDenied("The member who started this import can no longer sign in.")
        return import_commit(actor=actor, tenant=tenant, job=job, queued=True)
    except engine.ImportRejected as exc:
        reason = f"{exc} Fix the rows shown (or the mapping) and import again."
    except (ValidationError, PlanLimitExceeded, PermissionDenied) as exc:
        reason = " ".join(getattr(exc, "messages", None) or [str(exc)])
    with transaction.atomic():
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.IMPORTING).update(
            status=ImportStatus.PENDING, report={"error": reason}
        )
        if actor is not None:
            notification_send(
                recipients=[actor],
                kind=NotificationKind.IMPORT,
                title=f"Import of {job.kind} not done",
                body=reason[:500],
                url=f"/crm/import/{job_id}/",
                source=f"import:{job_id}:refused:{queued_at}",
            )
    return {"job": job_id, "error": reason}


def import_jobs_sweep(*, now=None) -> list[int]:
    """Celery beat, per firm (decision 1220): an ``importing`` job whose background commit gave no
    sign of life for ``IMPORT_JOB_STALE_SECONDS`` (its worker died for good, its retries ran out,
    or it failed on an unexpected error) goes back to pending with the reason in
    ``report["error"]``, shown on its page; the member who started it is notified and operators
    get an error log line. Nothing was written by it: the commit is one transaction, and a commit
    still running holds the job's row lock, so the sweep leaves it alone. A late delivery of the
    task then finds the job pending and does nothing. Returns the ids swept. Idempotent. The
    kernel is ``codex.stale_jobs`` (decision 1352)."""

    def end(job: ImportJob, reason: str, at) -> None:
        job.status = ImportStatus.PENDING
        job.report = {"error": reason, "swept_at": at.isoformat()}
        job.save(update_fields=["status", "report"])

    return stale_jobs_sweep(
        active=ImportJob.objects.filter(status=ImportStatus.IMPORTING).select_related("created_by"),
        what="import job",
        reason=lambda job, seen: (
            f"The import stopped: {silence(seen)}. Nothing was imported; press Import to try again."
        ),
        end=end,
        log=logger,
        notice=lambda job: StaleNotice(
            kind=NotificationKind.IMPORT,
            title=f"Import of {job.kind} not done",
            url=f"/crm/import/{job.pk}/",
            source=f"import:{job.pk}:swept:{job.report['swept_at']}",
        ),
        log_extra=lambda job: {"import_job_id": job.pk, "kind": job.kind},
        now=now,
    )


def import_cancel(*, actor, job: ImportJob) -> ImportJob:
    access.require_write(actor)
    if job.status == ImportStatus.PENDING:
        job.status = ImportStatus.CANCELLED
        job.rows = []
        job.save(update_fields=["status", "rows"])
    return job
