"""The firm's billing pages (/billing/) and the Stripe-compatible webhook (base domain).

Everyone in the firm may see the plan, usage and invoices; only owners and admins may change plan,
cancel or reactivate (others get 403; see docs/decisions/0302-billing-access.md).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from codex.tables import table_page

from . import selectors, services
from .forms import InvoiceFilterForm, PlanChangeForm
from .providers import StripeProvider, WebhookRejected

logger = logging.getLogger(__name__)


def _require_manager(request) -> None:
    if not request.user.is_manager:
        raise PermissionDenied("Only the firm's owners and admins may change the subscription.")


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


INVOICE_SORTS = {"number": "number", "period": "period_start", "total": "total", "status": "status"}


@login_required
@require_GET
def overview(request):
    tenant = request.tenant
    sub = selectors.subscription_of(tenant)
    filters = InvoiceFilterForm(request.GET)
    invoices = table_page(
        request, filters.filter(selectors.invoices_of(tenant)), sorts=INVOICE_SORTS, default="-period", per_page=25
    )
    context = {
        "subscription": sub,
        "effective_plan": selectors.effective_plan(sub),
        "meters": selectors.usage_meters(tenant),
        "invoices": invoices.page,
        "invoice_filters": filters,
        "table_sort": invoices.sort,
        "plans": selectors.plans_public(),
        "form": PlanChangeForm(
            initial={"plan": sub.plan.code if sub else None, "interval": sub.interval if sub else "month"}
        ),
        "can_manage": request.user.is_manager,
    }
    return render(request, "billing/overview.html", context)


@login_required
def change_plan(request):
    """GET: the proration preview of the chosen plan; POST: confirm the change."""
    _require_manager(request)
    form = PlanChangeForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "billing/change.html", {"form": form, "preview": None}, status=400)
    plan, interval = form.cleaned_data["plan"], form.cleaned_data["interval"]
    try:
        if request.method == "POST":
            result = services.subscription_change_plan(
                tenant=request.tenant,
                plan=plan,
                interval=interval,
                actor=request.user.email,
                ip=request.META.get("REMOTE_ADDR"),
            )
            messages.success(request, f"You are now on {plan.name} ({interval}ly).")
            if result.invoice:
                return redirect("billing:invoice", pk=result.invoice.pk)
            return redirect("billing:overview")
        preview = services.subscription_change_preview(tenant=request.tenant, plan=plan, interval=interval)
    except ValidationError as exc:
        form.add_error(None, _error_text(exc))
        return render(request, "billing/change.html", {"form": form, "preview": None}, status=400)
    context = {"form": form, "preview": preview, "tax_rate": selectors.tax_rate_of(request.tenant)}
    return render(request, "billing/change.html", context)


@login_required
@require_POST
def cancel(request):
    _require_manager(request)
    try:
        sub = services.subscription_cancel(
            tenant=request.tenant, actor=request.user.email, ip=request.META.get("REMOTE_ADDR")
        )
        messages.success(
            request, f"Your subscription ends on {sub.current_period_end:%d %B %Y}. You can undo this until then."
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("billing:overview")


@login_required
@require_POST
def reactivate(request):
    _require_manager(request)
    try:
        services.subscription_reactivate(
            tenant=request.tenant, actor=request.user.email, ip=request.META.get("REMOTE_ADDR")
        )
        messages.success(request, "Your subscription is active again.")
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("billing:overview")


@login_required
@require_GET
def invoice_detail(request, pk: int):
    invoice = selectors.invoice_of(request.tenant, pk)
    return render(request, "billing/invoice.html", {"invoice": invoice})


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe-compatible webhook on the base domain: verified, then applied once per event id."""
    try:
        event = StripeProvider().parse_webhook(request.body, request.headers)
    except WebhookRejected as exc:
        logger.warning("webhook rejected: %s", exc)
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    first_time, result = services.webhook_event_apply(event=event)
    return JsonResponse({"received": True, "duplicate": not first_time, "result": result})
