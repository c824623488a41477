"""Pages under /fees/: the products and households, fee runs (preview, approve, issue), the
firm's fee revenue with CSV. Owners and admins manage; viewers read the runs; advisors see their
own book's revenue."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from crm import access as crm_access

from . import selectors, services
from .api import csv_response
from .models import FeeRun, Frequency


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


def _plan_refused(request, exc: PlanLimitExceeded):
    return render(request, "fees/plan.html", {"message": str(exc)}, status=402)


@login_required
def overview(request):
    """Products, schedules and billing groups (the advisor's book for advisors)."""
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    context = {
        "products": selectors.products_list(),
        "schedules": selectors.schedules_list(),
        "groups": selectors.groups_for(request.user).select_related("client").prefetch_related("portfolios"),
        "subscriptions": selectors.subscriptions_for(request.user),
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
                run = services.fee_run_preview(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Preview computed: check it, then approve.")
                return redirect("fees:run", pk=run.pk)
    return render(request, "fees/runs.html", {"form": form, "runs": selectors.runs_list()[:50]})


@login_required
def run_detail(request, pk: int):
    try:
        _gate(request)
    except PlanLimitExceeded as exc:
        return _plan_refused(request, exc)
    _firm(request)
    run = get_object_or_404(FeeRun, pk=pk)
    items = list(run.items.select_related("group").order_by("group__name"))
    context = {
        "run": run,
        "items": items,
        "total": sum((i.total for i in items if not i.problems and not i.skipped), 0),
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
        counts = services.fee_run_issue(run=run, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"{counts.ready} invoice(s) issued; {counts.with_problems} group(s) held back by missing data; "
            f"{counts.skipped} skipped (invoiced already or nothing to bill).",
        )
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
