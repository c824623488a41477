"""CRM pages on a firm's host. Thin: forms parse, crm.services write, crm.selectors read, and
crm.access decides what the user may see (404 outside the book, 403 for read-only roles).

About 600 lines because it holds one short view per CRM page (contacts, companies, deals and the
pipeline, tasks, search, import and export); the newsletter's pages are in crm.newsletter.views.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex import imports as engine
from codex.idempotent_forms import idempotent_form

from . import access, exports, forms, selectors, services
from .imports import SPECS
from .models import ActivityKind, Contact, DealStatus, Lifecycle, PipelineStage, StageKind

PAGE_SIZE = 50


def _page(request, qs):
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _querystring(request, **drop) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- contacts ---------------------------------------------------------------------------------------


@login_required
def contact_list(request):
    f = {k: request.GET.get(k, "").strip() for k in ("q", "lifecycle", "owner", "tag")}
    qs = selectors.contact_list(user=request.user, **f)
    return render(
        request,
        "crm/contact_list.html",
        {
            "page": _page(request, qs),
            "filters": f,
            "lifecycles": Lifecycle.choices,
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@idempotent_form
def contact_create(request):
    access.require_write(request.user)
    form = forms.ContactForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            contact = services.contact_create(actor=request.user, tenant=request.tenant, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{contact} was added.")
            return redirect("crm:contact-detail", contact.pk)
    return render(
        request, "crm/form.html", {"form": form, "title": "New contact", "cancel": reverse("crm:contact-list")}
    )


@login_required
def contact_detail(request, pk: int):
    contact = access.contact_for_user(
        request.user, pk, queryset=access.contacts_for(request.user).select_related("owner", "company")
    )
    record = selectors.client_record(user=request.user, contact=contact)
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "record": record,
            "activity_form": forms.ActivityForm(initial={"kind": ActivityKind.NOTE}),
            "merge_form": forms.MergeForm(),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
def contact_edit(request, pk: int):
    contact = access.contact_for_user(request.user, pk, write=True)
    form = forms.ContactForm(request.POST or None, instance=contact, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        try:
            services.contact_update(actor=request.user, contact=contact, shared_with=shared, **data)
        except (ValidationError, PermissionDenied) as exc:
            forms.apply_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:contact-detail", contact.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {contact}", "cancel": reverse("crm:contact-detail", args=[contact.pk])},
    )


@login_required
@require_POST
@idempotent_form
def contact_log_activity(request, pk: int):
    contact = access.contact_for_user(request.user, pk, write=True)
    form = forms.ActivityForm(request.POST)
    if form.is_valid():
        try:
            services.activity_create(
                actor=request.user,
                contact=contact,
                company=contact.company,
                kind=form.cleaned_data["kind"],
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                occurred_at=form.cleaned_data.get("occurred_at"),
                due_date=form.cleaned_data.get("due_date"),
            )
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Logged.")
            return redirect("crm:contact-detail", contact.pk)
    record = selectors.client_record(user=request.user, contact=contact)
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "record": record,
            "activity_form": form,
            "merge_form": forms.MergeForm(),
            "can_write": True,
        },
        status=400,
    )


def _find_other(request, value: str, *, finder, by_email=None):
    value = value.strip()
    if value.isdigit():
        return finder(request.user, int(value), write=True)
    if by_email is not None and "@" in value:
        other = by_email.filter(email__iexact=value).first()
        if other is not None:
            return other
    raise ValidationError({"other": "No such record in your book."})


@login_required
def contact_merge(request, pk: int):
    survivor = access.contact_for_user(request.user, pk, write=True)
    form = forms.MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            loser = _find_other(
                request,
                form.cleaned_data["other"],
                finder=access.contact_for_user,
                by_email=access.contacts_for(request.user),
            )
            services.contact_merge(actor=request.user, survivor=survivor, loser=loser)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except Contact.DoesNotExist:
            form.add_error("other", "No such record in your book.")
        else:
            messages.success(request, f"Merged into {survivor}.")
            return redirect("crm:contact-detail", survivor.pk)
    duplicates = (
        access.contacts_for(request.user)
        .filter(last_name__iexact=survivor.last_name, first_name__iexact=survivor.first_name)
        .exclude(pk=survivor.pk)[:10]
    )
    return render(
        request,
        "crm/merge.html",
        {"form": form, "survivor": survivor, "duplicates": duplicates, "kind": "contact"},
        status=400 if form.errors else 200,
    )


# --- companies --------------------------------------------------------------------------------------


@login_required
def company_list(request):
    q = request.GET.get("q", "").strip()
    return render(
        request,
        "crm/company_list.html",
        {
            "page": _page(request, selectors.company_list(user=request.user, q=q)),
            "q": q,
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@idempotent_form
def company_create(request):
    access.require_write(request.user)
    form = forms.CompanyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            company = services.company_create(actor=request.user, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"{company} was added.")
            return redirect("crm:company-detail", company.pk)
    return render(
        request, "crm/form.html", {"form": form, "title": "New company", "cancel": reverse("crm:company-list")}
    )


@login_required
def company_detail(request, pk: int):
    company = access.company_for_user(request.user, pk)
    return render(
        request,
        "crm/company_detail.html",
        {
            "company": company,
            "contacts": access.contacts_for(request.user).filter(company=company).select_related("owner"),
            "deals": access.deals_for(request.user).filter(company=company).select_related("stage"),
            "activities": access.activities_for(request.user).filter(company=company).select_related("owner")[:50],
            "merge_form": forms.MergeForm(),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
def company_edit(request, pk: int):
    company = access.company_for_user(request.user, pk, write=True)
    form = forms.CompanyForm(request.POST or None, instance=company, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        try:
            services.company_update(actor=request.user, company=company, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("crm:company-detail", company.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {company}", "cancel": reverse("crm:company-detail", args=[company.pk])},
    )


@login_required
def company_merge(request, pk: int):
    survivor = access.company_for_user(request.user, pk, write=True)
    form = forms.MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            loser = _find_other(request, form.cleaned_data["other"], finder=access.company_for_user)
            services.company_merge(actor=request.user, survivor=survivor, loser=loser)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"Merged into {survivor}.")
            return redirect("crm:company-detail", survivor.pk)
    duplicates = access.companies_for(request.user).filter(name__iexact=survivor.name).exclude(pk=survivor.pk)[:10]
    return render(
        request,
        "crm/merge.html",
        {"form": form, "survivor": survivor, "duplicates": duplicates, "kind": "company"},
        status=400 if form.errors else 200,
    )


# --- deals and the pipeline -------------------------------------------------------------------------


@login_required
def deal_list(request):
    f = {k: request.GET.get(k, "").strip() for k in ("q", "status", "stage")}
    return render(
        request,
        "crm/deal_list.html",
        {
            "page": _page(request, selectors.deal_list(user=request.user, **f)),
            "filters": f,
            "statuses": DealStatus.choices,
            "stages": services.pipeline_stages_ensure(),
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@idempotent_form
def deal_create(request):
    access.require_write(request.user)
    services.pipeline_stages_ensure()
    initial = {}
    if request.GET.get("contact", "").isdigit():
        initial["contact"] = request.GET["contact"]
    form = forms.DealForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            deal = services.deal_create(actor=request.user, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"Deal “{deal}” was added.")
            return redirect("crm:deal-detail", deal.pk)
    return render(request, "crm/form.html", {"form": form, "title": "New deal", "cancel": reverse("crm:pipeline")})


@login_required
def deal_detail(request, pk: int):
    deal = access.deal_for_user(
        request.user, pk, queryset=access.deals_for(request.user).select_related("stage", "contact", "company", "owner")
    )
    return render(
        request,
        "crm/deal_detail.html",
        {
            "deal": deal,
            "history": deal.stage_changes.select_related("from_stage", "to_stage", "changed_by"),
            "activities": access.activities_for(request.user).filter(deal=deal).select_related("owner")[:50],
            "move_form": forms.DealMoveForm(initial={"stage": deal.stage_id}),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
def deal_edit(request, pk: int):
    deal = access.deal_for_user(request.user, pk, write=True)
    form = forms.DealForm(request.POST or None, instance=deal, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        if data.get("probability") is None:
            data["probability"] = deal.stage.probability
        try:
            services.deal_update(actor=request.user, deal=deal, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("crm:deal-detail", deal.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {deal}", "cancel": reverse("crm:deal-detail", args=[deal.pk])},
    )


@login_required
@require_POST
def deal_move(request, pk: int):
    """The board's per-card form (works without JavaScript; the drag-and-drop script posts it too)."""
    deal = access.deal_for_user(request.user, pk, write=True)
    form = forms.DealMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a stage.")
    else:
        try:
            deal = services.deal_move(
                actor=request.user, deal=deal, stage=form.cleaned_data["stage"], reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            messages.error(request, f"“{deal}” was not moved: {' '.join(exc.messages)}")
        else:
            messages.success(request, f"“{deal}” is now in {deal.stage}.")
    target = request.POST.get("next", "")
    if target == "deal":
        return redirect("crm:deal-detail", deal.pk)
    return redirect(reverse("crm:pipeline") + f"#deal-{deal.pk}")


@login_required
def pipeline(request):
    board = selectors.pipeline_board(user=request.user)
    return render(
        request,
        "crm/pipeline.html",
        {"board": board, "can_write": access.can_write(request.user), "StageKind": StageKind},
    )


@login_required
@idempotent_form
def pipeline_stages(request, pk: int | None = None):
    """The firm's stages: everyone sees them, owners and admins add and change them."""
    services.pipeline_stages_ensure()
    stage = get_object_or_404(PipelineStage, pk=pk) if pk else None
    form = forms.PipelineStageForm(request.POST or None, instance=stage, prefix=f"s{pk or 'new'}")
    if request.method == "POST":
        access.require_manager_or_key(request.user)
        if form.is_valid():
            try:
                saved = services.pipeline_stage_save(actor=request.user, stage=stage, **form.cleaned_data)
            except ValidationError as exc:
                forms.apply_errors(form, exc)
            else:
                messages.success(request, f"Stage “{saved}” saved.")
                return redirect("crm:pipeline-stages")
    stages = PipelineStage.objects.annotate(open_deals=Count("deals", filter=Q(deals__status=DealStatus.OPEN)))
    rows = [
        (s, form if stage is not None and s.pk == stage.pk else forms.PipelineStageForm(instance=s, prefix=f"s{s.pk}"))
        for s in stages
    ]
    new_form = form if stage is None else forms.PipelineStageForm(prefix="snew")
    return render(
        request,
        "crm/pipeline_stages.html",
        {"rows": rows, "new_form": new_form, "can_manage": access.can_assign_owner(request.user)},
        status=400 if form.errors else 200,
    )


# --- tasks ------------------------------------------------------------------------------------------


@login_required
@idempotent_form
def task_list(request):
    today = timezone.localdate()
    form = forms.TaskForm(request.POST or None)
    if request.method == "POST":
        access.require_write(request.user)
        if form.is_valid():
            services.task_create(
                owner=request.user,
                title=form.cleaned_data["subject"],
                due_date=form.cleaned_data["due_date"],
                body=form.cleaned_data["body"],
            )
            messages.success(request, "Task added.")
            return redirect("crm:task-list")
    due = list(selectors.tasks_due_for(request.user, due="due", today=today))
    later = selectors.tasks_due_for(request.user, due="open", today=today).exclude(due_date__lte=today)[:100]
    return render(
        request,
        "crm/task_list.html",
        {
            "overdue": [t for t in due if t.due_date < today],
            "due_today": [t for t in due if t.due_date == today],
            "later": later,
            "form": form,
            "today": today,
            "can_write": access.can_write(request.user),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def task_complete(request, pk: int):
    task = access.activity_for_user(request.user, pk, write=True)
    try:
        services.task_complete(actor=request.user, task=task, done=request.POST.get("done", "1") == "1")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{task}” marked {'done' if task.completed_at else 'not done'}.")
    nxt = request.POST.get("next", "")
    return redirect(nxt if nxt.startswith("/crm/") else reverse("crm:task-list"))


# --- search -----------------------------------------------------------------------------------------


@login_required
def search(request):
    q = request.GET.get("q", "").strip()
    hits = selectors.crm_search(request.user, q, 50) if q else []
    return render(request, "crm/search.html", {"q": q, "hits": hits})


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


@login_required
def import_detail(request, pk: int):
    job = access.import_for_user(request.user, pk)
    if job.status != "pending":
        return render(request, "crm/import_report.html", {"job": job})
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
    job = access.import_for_user(request.user, pk, write=True)
    try:
        report = services.import_commit(actor=request.user, tenant=request.tenant, job=job)
    except engine.ImportRejected as exc:
        messages.error(request, f"{exc} Fix the rows shown below (or the mapping) and try again.")
        return redirect("crm:import-detail", job.pk)
    except (ValidationError, PlanLimitExceeded) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("crm:import-detail", job.pk)
    messages.success(
        request,
        f"Imported: {report['created']} created, {report['updated']} updated, {report['merged']} merged, "
        f"{report['skipped']} skipped.",
    )
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
