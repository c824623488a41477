"""Pages under /fees/: products, fee schedules (tiers table, exclusions), billing groups
(households), client subscriptions, fee runs (preview, approve, issue), voiding invoices, the
firm's fee revenue with CSV. Owners and admins manage; viewers read; advisors see their own
book's groups, subscriptions and revenue (another advisor's group is a 404)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex.idempotent_forms import idempotent_form
from codex.tables import table_page
from crm import access as crm_access

from . import forms as fee_forms
from . import selectors, services
from .api import csv_response
from .models import FeeRun, Frequency, InvoiceKind, InvoiceStatus, JobKind, JobStatus, RunStatus


def _gate(request) -> None:
    services.fee_billing_check(tenant=request.tenant)


def _manager(request) -> None:
    if not selectors.can_manage(request.user):
        raise PermissionDenied("Only the firm's owners and admins manage fees.")


def _firm(request) -> None:
    if not crm_access.sees_whole_firm(request.user):
        raise PermissionDenied("Fee runs are for the firm's owners, admins and viewers.")


class RunForm(forms.Form):
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    frequency = forms.ChoiceField(choices=Frequency.choices)


class RevenueForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(choices=[(d, d.title()) for d in selectors.REVENUE_DIMENSIONS], initial="month")


def _totals(pairs) -> list[tuple[str, Decimal]]:
    """Amounts summed per currency (a run may bill households in several), by currency code."""
    out: dict[str, Decimal] = {}
    for currency, amount in pairs:
        out[currency] = out.get(currency, Decimal(0)) + amount
    return sorted(out.items())


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *RunStatus.choices], required=False)
    frequency = forms.ChoiceField(choices=[("", "Any frequency"), *Frequency.choices], required=False)


def _plan_refused(request, exc: PlanLimitExceeded):
    return render(request, "fees/plan.html", {"message": str(exc)}, status=402)


OVERVIEW_ROWS = 10


@login_required
def overview(request):
    """Products, schedules and billing groups (the advisor's book for advisors)."""
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    # The latest few of each; the full lists (sorted, filtered, paged) are on their own pages.
    context = {
        "products": selectors.products_list().order_by("-created_at", "-id")[:OVERVIEW_ROWS],
        "schedules": selectors.schedules_list(),
        "groups": selectors.groups_filtered(user=request.user).order_by("-created_at", "-id")[:OVERVIEW_ROWS],
        "subscriptions": selectors.subscriptions_for(request.user).order_by("-created_at", "-id")[:OVERVIEW_ROWS],
        "can_manage": selectors.can_manage(request.user),
        "overview_rows": OVERVIEW_ROWS,
    }
    return render(request, "fees/overview.html", context)


@login_required
def run_list(request):
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    _firm(request)
    form = RunForm(request.POST or None)
    if request.method == "POST":
        _manager(request)
        if form.is_valid():
            try:
                job = services.fee_run_preview_queue(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                _watch(request, job)
                return redirect("fees:runs")
    ended = _ended_jobs(request)
    for job in ended:  # the preview this session started is ready: go to it
        if job.kind == JobKind.PREVIEW and job.status == JobStatus.DONE and job.run_id:
            return redirect("fees:run", pk=job.run_id)
    running = _running(selectors.run_jobs_active().filter(kind=JobKind.PREVIEW))
    filters = RunFilterForm(request.GET)
    runs = selectors.runs_list()
    if filters.is_valid():
        runs = selectors.runs_filtered(runs, **filters.cleaned_data)
    table = table_page(
        request,
        runs,
        sorts={"period": "period_start", "frequency": "frequency", "status": "status", "created": "created_at"},
        default="-period",
    )
    context = {
        "form": form,
        "filters": filters,
        "table": table,
        "page_obj": table.page,
        "running": running,
        "refresh_seconds": JOB_REFRESH_SECONDS if running else 0,
    }
    return render(request, "fees/runs.html", context)


JOB_REFRESH_SECONDS = 2
_JOBS_WATCHED = "fees_run_jobs"


def _watch(request, job) -> None:
    """The session remembers the jobs it started, to say once how each ended (decision 1201)."""
    request.session[_JOBS_WATCHED] = sorted(set(request.session.get(_JOBS_WATCHED, [])) | {job.pk})


def _ended_jobs(request) -> list:
    """The watched jobs that have ended since the last look, each told once as a message."""
    watched = request.session.get(_JOBS_WATCHED, [])
    if not watched:
        return []
    ended = list(selectors.run_jobs_ended(watched))
    for job in ended:
        if job.status == JobStatus.DONE:
            messages.success(request, job.message)
        else:
            messages.error(request, job.message)
    left = sorted(set(watched) - {j.pk for j in ended})
    request.session[_JOBS_WATCHED] = left
    return ended


def _running(jobs) -> list[dict]:
    return [{"job": job, "progress": services.fee_run_job_progress(job=job)} for job in jobs]


@login_required
def run_detail(request, pk: int):
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    _firm(request)
    run = get_object_or_404(FeeRun, pk=pk)
    _ended_jobs(request)
    running = _running(selectors.run_jobs_active().filter(run=run))
    items = list(run.items.select_related("group").order_by("group__name"))
    context = {
        "running": running,
        "refresh_seconds": JOB_REFRESH_SECONDS if running else 0,
        "run": run,
        "invoices": run.invoices.select_related("group").order_by("number"),
        "items": items,
        "totals": _totals((i.currency, i.total) for i in items if not i.problems and not i.skipped),
        "with_problems": [i for i in items if i.problems],
        "can_manage": selectors.can_manage(request.user),
    }
    return render(request, "fees/run.html", context)


@login_required
@require_POST
def run_approve(request, pk: int):
    _gate(request)
    _manager(request)
    run = get_object_or_404(FeeRun, pk=pk)
    try:
        services.fee_run_approve(run=run, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Run approved: it can be issued.")
    return redirect("fees:run", pk=pk)


@login_required
@require_POST
def run_issue(request, pk: int):
    _gate(request)
    _manager(request)
    run = get_object_or_404(FeeRun, pk=pk)
    try:
        job = services.fee_run_issue_queue(run=run, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        _watch(request, job)
    return redirect("fees:run", pk=pk)


def _revenue_form(request) -> RevenueForm:
    today = timezone.localdate()
    data = request.GET.copy()
    data.setdefault("start", date(today.year, 1, 1).isoformat())
    data.setdefault("end", today.isoformat())
    data.setdefault("by", "month")
    return RevenueForm(data)


@login_required
def revenue(request):
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    form = _revenue_form(request)
    result = selectors.fee_revenue(user=request.user, **form.cleaned_data) if form.is_valid() else None
    return render(request, "fees/revenue.html", {"form": form, "revenue": result, "query": request.GET.urlencode()})


@login_required
def revenue_csv(request):
    _gate(request)
    form = _revenue_form(request)
    if not form.is_valid():
        return render(request, "fees/revenue.html", {"form": form, "revenue": None}, status=400)
    result = selectors.fee_revenue(user=request.user, **form.cleaned_data)
    return csv_response(selectors.revenue_csv_rows(result), filename="fee-revenue.csv")


# --- products, schedules, groups, subscriptions, void -------------------------------------------------


def _gated(view):
    """The plan gate of every fee page: the upgrade message (402) when fees are not in the plan."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            _gate(request)
        except PlanLimitExceeded as exc:
            return _plan_refused(request, exc)
        return view(request, *args, **kwargs)

    return wrapped


def _form_page(request, title: str, forms_: list, *, cancel: str, extra: dict | None = None, status: int = 200):
    context = {"title": title, "forms": forms_, "cancel": cancel, "can_manage": selectors.can_manage(request.user)}
    return render(request, "fees/form.html", {**context, **(extra or {})}, status=status)


@login_required
@_gated
@idempotent_form
def product_create(request):
    _manager(request)
    form = fee_forms.ProductForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_create(**form.cleaned_data)
        except ValidationError as exc:
            fee_forms.apply_errors(exc, form)
        else:
            messages.success(request, f"Product {product.name} was added.")
            return redirect("fees:product", pk=product.pk)
    return _form_page(request, "New product", [form], cancel=reverse("fees:overview"))


@login_required
@_gated
def product_detail(request, pk: int):
    """Rename or describe a product, archive it (no new subscriptions) or restore it."""
    product = get_object_or_404(selectors.products_list(), pk=pk)
    form = fee_forms.ProductForm(
        request.POST or None, editing=True, initial={"name": product.name, "description": product.description}
    )
    if request.method == "POST":
        _manager(request)
        action = request.POST.get("action", "save")
        try:
            if action in ("archive", "restore"):
                services.product_update(product=product, archived=action == "archive")
                messages.success(request, f"{product.name} was {'archived' if action == 'archive' else 'restored'}.")
                return redirect("fees:product", pk=pk)
            if form.is_valid():
                services.product_update(product=product, **form.cleaned_data)
                messages.success(request, "Saved.")
                return redirect("fees:product", pk=pk)
        except ValidationError as exc:
            fee_forms.apply_errors(exc, form)
    return _form_page(
        request, f"Product {product.name}", [form], cancel=reverse("fees:overview"), extra={"product": product}
    )


def _terms_forms(request, prefix_data, *, exclusions: bool = True, initial: dict | None = None):
    return (
        fee_forms.TermsForm(prefix_data, prefix="terms", exclusions=exclusions, initial=initial),
        fee_forms.TiersForm(prefix_data, prefix="tiers", initial=initial),
    )


def _version_initial(version) -> dict:
    """A version's terms and exclusions as the new-version form's starting point: one edits only
    what changes."""
    if version is None:
        return {}
    initial = {
        "method": version.method,
        "flat_annual": version.flat_annual,
        "minimum_annual": version.minimum_annual,
        "maximum_annual": version.maximum_annual,
        "exclude_cash": version.exclude_cash,
        "excluded_asset_classes": version.excluded_asset_classes,
        "excluded_instruments": [i.pk for i in version.excluded_instruments.all()],
    }
    for i, tier in enumerate(version.tiers[: fee_forms.TIER_ROWS]):
        initial[f"upto_{i}"] = tier["upto"] or ""
        initial[f"bps_{i}"] = tier["bps"]
    return initial


def _terms_values(terms, tiers) -> dict:
    data = dict(terms.cleaned_data)
    for key in ("flat_annual", "minimum_annual"):
        if data.get(key) is None:
            data[key] = 0
    data["tiers"] = tiers.cleaned_data["tiers"]
    return data


@login_required
@_gated
@idempotent_form
def schedule_create(request):
    _manager(request)
    data = request.POST or None
    form = fee_forms.ScheduleForm(data)
    terms, tiers = _terms_forms(request, data, exclusions=False)
    if request.method == "POST" and all([form.is_valid(), terms.is_valid(), tiers.is_valid()]):
        try:
            schedule = services.fee_schedule_create(**form.cleaned_data, **_terms_values(terms, tiers))
        except ValidationError as exc:
            fee_forms.apply_errors(exc, form, terms, tiers=tiers)
        else:
            messages.success(request, f"Fee schedule {schedule.name} was added.")
            return redirect("fees:schedule", pk=schedule.pk)
    return _form_page(
        request, "New fee schedule", [form, terms], cancel=reverse("fees:overview"), extra={"tiers": tiers}
    )


@login_required
@_gated
def schedule_detail(request, pk: int):
    """A schedule's history (each version's terms and exclusions from its date); managers rename,
    archive or restore it and add a version from a date (terms and/or exclusions)."""
    schedule = get_object_or_404(selectors.schedules_list(), pk=pk)
    action = request.POST.get("action", "save") if request.method == "POST" else ""
    posted = request.POST if action == "save" else None
    form = fee_forms.ScheduleForm(posted, editing=True, initial={"name": schedule.name})
    versions = sorted(schedule.versions.all(), key=lambda v: v.effective_from, reverse=True)
    # (version, its last day): each ends the day before the next one starts; the latest is open.
    history = [
        (v, newer.effective_from - timedelta(days=1) if newer else None)
        for newer, v in zip([None, *versions], versions, strict=False)
    ]
    latest = versions[0] if versions else None
    terms, tiers = _terms_forms(request, request.POST if action == "terms" else None, initial=_version_initial(latest))
    if request.method == "POST":
        _manager(request)
        try:
            if action in ("archive", "restore"):
                services.fee_schedule_update(schedule=schedule, archived=action == "archive")
                messages.success(request, f"{schedule.name} was {'archived' if action == 'archive' else 'restored'}.")
                return redirect("fees:schedule", pk=pk)
            if action == "terms" and terms.is_valid() & tiers.is_valid():
                version = services.fee_schedule_change(schedule=schedule, **_terms_values(terms, tiers))
                messages.success(request, f"New version from {version.effective_from}.")
                return redirect("fees:schedule", pk=pk)
            if action == "save" and form.is_valid():
                services.fee_schedule_update(schedule=schedule, **form.cleaned_data)
                messages.success(request, "Saved.")
                return redirect("fees:schedule", pk=pk)
        except ValidationError as exc:
            fee_forms.apply_errors(exc, terms if action == "terms" else form, tiers=tiers)
    return render(
        request,
        "fees/schedule.html",
        {
            "schedule": schedule,
            "history": history,
            "form": form,
            "terms": terms,
            "tiers": tiers,
            "can_manage": selectors.can_manage(request.user),
        },
    )


@login_required
@_gated
@idempotent_form
def group_create(request):
    _manager(request)
    form = fee_forms.GroupForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.billing_group_create(
                name=form.cleaned_data["name"],
                client=form.cleaned_data["client"],
                portfolios=list(form.cleaned_data["portfolios"]),
                currency=form.cleaned_data["currency"] or None,
            )
        except ValidationError as exc:
            fee_forms.apply_errors(exc, form)
        else:
            messages.success(request, f"Billing group {group.name} was added.")
            return redirect("fees:group", pk=group.pk)
    return _form_page(request, "New billing group", [form], cancel=reverse("fees:overview"))


@login_required
@_gated
def group_detail(request, pk: int):
    """A household: its accounts (managers change them), subscriptions and invoices. Advisors
    see their own book's groups; another's is a 404."""
    group = get_object_or_404(selectors.groups_for(request.user).select_related("client"), pk=pk)
    form = fee_forms.GroupForm(
        request.POST or None,
        user=request.user,
        group=group,
        initial={"name": group.name, "portfolios": [a.portfolio_id for a in group.accounts.all()]},
    )
    if request.method == "POST":
        _manager(request)
        if form.is_valid():
            try:
                services.billing_group_update(
                    group=group, name=form.cleaned_data["name"], portfolios=list(form.cleaned_data["portfolios"])
                )
            except ValidationError as exc:
                fee_forms.apply_errors(exc, form)
            else:
                messages.success(request, "Saved.")
                return redirect("fees:group", pk=pk)
    return _form_page(
        request,
        f"Billing group {group.name}",
        [form],
        cancel=reverse("fees:overview"),
        extra={
            "group": group,
            "subscriptions": selectors.subscriptions_for(request.user).filter(group=group),
            "invoices": selectors.invoices_for(request.user).filter(group=group)[:50],
        },
    )


@login_required
@_gated
@idempotent_form
def subscription_create(request):
    _manager(request)
    groups = selectors.groups_for(request.user).order_by("name")
    form = fee_forms.SubscriptionForm(request.POST or None, groups=groups, initial={"group": request.GET.get("group")})
    if request.method == "POST" and form.is_valid():
        try:
            sub = services.subscription_create(**form.cleaned_data)
        except ValidationError as exc:
            fee_forms.apply_errors(exc, form)
        else:
            messages.success(request, f"{sub.group.name} subscribes to {sub.product.name}.")
            return redirect("fees:subscription", pk=sub.pk)
    return _form_page(request, "New client subscription", [form], cancel=reverse("fees:overview"))


@login_required
@_gated
def subscription_detail(request, pk: int):
    """A subscription's terms; managers end it (billed pro rata to the end date)."""
    sub = get_object_or_404(selectors.subscriptions_for(request.user), pk=pk)
    form = fee_forms.EndForm(request.POST or None, initial={"ends_on": sub.ends_on})
    if request.method == "POST":
        _manager(request)
        if form.is_valid():
            try:
                services.subscription_end(subscription=sub, **form.cleaned_data)
            except ValidationError as exc:
                fee_forms.apply_errors(exc, form)
            else:
                messages.success(request, f"The subscription ends on {sub.ends_on}.")
                return redirect("fees:subscription", pk=pk)
    return _form_page(
        request,
        f"{sub.group.name}: {sub.product.name}",
        [form],
        cancel=reverse("fees:group", args=[sub.group_id]),
        extra={"subscription": sub},
    )


@login_required
@_gated
def invoice_void(request, pk: int):
    """Void a fee invoice with a reason (its number stays used; the period can be invoiced
    again; fees deducted from accounts are taken out of their ledgers)."""
    invoice = get_object_or_404(selectors.invoices_for(request.user), pk=pk)
    form = fee_forms.VoidForm(request.POST or None)
    if request.method == "POST":
        _manager(request)
        if form.is_valid():
            try:
                services.fee_invoice_void(invoice=invoice, **form.cleaned_data)
            except ValidationError as exc:
                fee_forms.apply_errors(exc, form)
            else:
                messages.success(request, f"Invoice {invoice.number} is void.")
                return redirect("fees:group", pk=invoice.group_id)
    return _form_page(
        request,
        f"Void invoice {invoice.number}",
        [form],
        cancel=reverse("fees:group", args=[invoice.group_id]),
        extra={"invoice": invoice, "voidable": invoice.status != InvoiceStatus.VOID, "kinds": InvoiceKind},
    )


# --- lists: sortable, filtered, paginated (codex.tables) ----------------------------------------------


class ListFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")

    def __init__(self, *args, choices: dict | None = None, search_label: str = "Search", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].label = search_label
        for name, options in (choices or {}).items():
            self.fields[name] = forms.ChoiceField(choices=[("", "Any"), *options], required=False)


def _list_page(request, template: str, queryset, *, filters: ListFilterForm, sorts: dict, default: str, **extra):
    table = table_page(request, queryset, sorts=sorts, default=default)
    context = {"table": table, "page_obj": table.page, "filters": filters, **extra}
    return render(request, template, {**context, "can_manage": selectors.can_manage(request.user)})


def _filters(request, **kwargs) -> tuple[ListFilterForm, dict]:
    form = ListFilterForm(request.GET, **kwargs)
    values = form.cleaned_data if form.is_valid() else {}
    return form, {k: v for k, v in values.items() if v}


@login_required
@_gated
def product_list(request):
    filters, values = _filters(request, search_label="Name", choices={"status": LIST_STATUS})
    return _list_page(
        request,
        "fees/products.html",
        selectors.products_filtered(**values),
        filters=filters,
        sorts={"name": "name", "currency": "currency", "flat_fee": "flat_fee", "status": "archived"},
        default="name",
    )


@login_required
@_gated
def group_list(request):
    filters, values = _filters(request, search_label="Group or client")
    return _list_page(
        request,
        "fees/groups.html",
        selectors.groups_filtered(user=request.user, **values),
        filters=filters,
        sorts={"name": "name", "client": ("client__last_name", "client__first_name"), "currency": "currency"},
        default="name",
    )


@login_required
@_gated
def subscription_list(request):
    filters, values = _filters(
        request,
        search_label="Group or product",
        choices={"frequency": Frequency.choices, "state": [("active", "Active"), ("ended", "Ended")]},
    )
    return _list_page(
        request,
        "fees/subscriptions.html",
        selectors.subscriptions_filtered(user=request.user, today=timezone.localdate(), **values),
        filters=filters,
        sorts={
            "group": "group__name",
            "product": "product__name",
            "starts": "starts_on",
            "ends": F("ends_on").asc(nulls_last=True),
        },
        default="group",
    )


@login_required
@_gated
def invoice_list(request):
    filters, values = _filters(
        request,
        search_label="Number, group or client",
        choices={"status": InvoiceStatus.choices, "kind": InvoiceKind.choices},
    )
    return _list_page(
        request,
        "fees/invoices.html",
        selectors.invoices_filtered(user=request.user, **values),
        filters=filters,
        sorts={
            "number": "number",
            "group": "group__name",
            "issued": "issued_on",
            "due": "due_on",
            "total": ("currency", "total"),
            "status": "status",
        },
        default="-issued",
    )


LIST_STATUS = [("active", "Active"), ("archived", "Archived")]
