"""CSV import (upload, mapping, preview, commit, cancel) and CSV export."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex import imports as engine
from codex.idempotent_forms import idempotent_form

from .. import access, exports, forms, services
from ..imports import SPECS
from ..models import ImportStatus

# --- import and export ------------------------------------------------------------------------------


@login_required
@idempotent_form
def import_start(request):
    access.require_write(request.user)
    form = forms.ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_start(
                actor=request.user,
                tenant=request.tenant,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
            )
        except engine.ImportFileError as exc:
            form.add_error("file", str(exc))
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("crm:import-detail", job.pk)
    recent = access.imports_for(request.user).defer("rows")[:10]
    return render(
        request, "crm/import_start.html", {"form": form, "recent": recent}, status=400 if form.errors else 200
    )


#: The imports this session started and has not been told the end of (decision 1001).
_WATCHED = "imports_watched"
#: How often the page of an import that runs in the background reloads itself.
REFRESH_SECONDS = 2


def _told_the_end(request, job) -> None:
    """The first view after a watched import ended says how it ended, once."""
    watched = set(request.session.get(_WATCHED, []))
    if job.pk not in watched or job.status == ImportStatus.IMPORTING:
        return
    request.session[_WATCHED] = sorted(watched - {job.pk})
    if job.status == ImportStatus.COMMITTED:
        r = job.report
        messages.success(
            request,
            f"Imported: {r.get('created', 0)} created, {r.get('updated', 0)} updated, "
            f"{r.get('merged', 0)} merged, {r.get('skipped', 0)} skipped.",
        )
    elif job.report.get("error"):
        messages.error(request, f"Not imported: {job.report['error']}")


@login_required
def import_detail(request, pk: int):
    job = access.import_for_user(request.user, pk)
    _told_the_end(request, job)
    if job.status != ImportStatus.PENDING:
        refresh = REFRESH_SECONDS if job.status == ImportStatus.IMPORTING else 0
        return render(request, "crm/import_report.html", {"job": job, "refresh_seconds": refresh})
    access.require_write(request.user)
    spec = SPECS[job.kind](actor=request.user)
    field_choices = [(f.name, f.label + (" *" if f.required else "")) for f in spec.fields]
    form = forms.ImportMappingForm(
        request.POST or None,
        headers=job.headers,
        field_choices=field_choices,
        mapping=job.mapping,
        initial={"duplicates": job.duplicates},
    )
    preview = None
    if request.method == "POST" and form.is_valid():
        try:
            preview = services.import_configure(
                actor=request.user, job=job, mapping=form.mapping(), duplicates=form.cleaned_data["duplicates"]
            )
        except ValidationError as exc:
            forms.apply_errors(form, exc)
    elif request.method != "POST":
        try:
            preview = services.import_configure(actor=request.user, job=job)
        except ValidationError as exc:
            # The form is unbound on GET (it has no cleaned_data to attach errors to): say what is
            # missing above it instead (was a 500, found by the isolation matrix).
            messages.error(request, " ".join(exc.messages))
    return render(
        request,
        "crm/import_preview.html",
        {
            "job": job,
            "form": form,
            "preview": preview,
            "rows": preview.rows[:100] if preview else [],
            "errors": preview.errors[:500] if preview else [],
            "fields": [f for f in spec.fields],
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def import_commit(request, pk: int):
    """Queue the commit (decision 1001): the job's page shows it running and says how it ended."""
    job = access.import_for_user(request.user, pk, write=True)
    try:
        services.import_commit_queue(actor=request.user, tenant=request.tenant, job=job)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("crm:import-detail", job.pk)
    request.session[_WATCHED] = sorted(set(request.session.get(_WATCHED, [])) | {job.pk})
    return redirect("crm:import-detail", job.pk)


@login_required
@require_POST
def import_cancel(request, pk: int):
    job = access.import_for_user(request.user, pk, write=True)
    services.import_cancel(actor=request.user, job=job)
    messages.success(request, "Import cancelled; nothing was written.")
    return redirect("crm:import-start")


@login_required
def export_csv(request, what: str):
    if what == "contacts":
        return exports.csv_response("contacts", exports.contact_rows(access.contacts_for(request.user)))
    if what == "companies":
        return exports.csv_response("companies", exports.company_rows(access.companies_for(request.user)))
    return exports.csv_response("deals", exports.deal_rows(access.deals_for(request.user)))
