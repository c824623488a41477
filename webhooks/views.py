"""Pages: the firm's webhook endpoints, one endpoint with its delivery log. Owners and admins."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex.confirm import confirmation_required
from codex.idempotent_forms import idempotent_form
from codex.tables import Sortable, table_page

from . import selectors, services
from .forms import DeliveryFilterForm, EndpointForm


def _manager_required(request) -> None:
    if not request.user.is_manager:
        raise PermissionDenied("Only the firm's owners and admins manage webhooks.")


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@idempotent_form
def endpoint_list(request):
    _manager_required(request)
    form = EndpointForm(request.POST or None, initial={"enabled": True})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(tenant=request.tenant, actor=request.user.email, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            messages.error(request, str(exc))
            status = 402
        else:
            messages.success(request, "Endpoint added. Its signing secret is on its page.")
            return redirect("webhooks:detail", pk=endpoint.pk)
    endpoints = selectors.endpoints_list()
    return render(request, "webhooks/list.html", {"form": form, "endpoints": endpoints}, status=status)


DELIVERY_SORTS: dict[str, Sortable] = {
    "created": "created_at",
    "event": "event__type",
    "status": "status",
    "attempts": "attempts",
    "next": F("next_attempt_at").asc(nulls_last=True),
}


@login_required
def endpoint_detail(request, pk: int):
    _manager_required(request)
    endpoint = selectors.endpoint_get(pk=pk)
    form = EndpointForm(
        request.POST or None,
        initial={
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": endpoint.event_types,
            "enabled": endpoint.enabled,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(tenant=request.tenant, endpoint=endpoint, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:detail", pk=endpoint.pk)
    filters = DeliveryFilterForm(request.GET)
    table = table_page(
        request, filters.filter(selectors.deliveries_of(endpoint=endpoint)), sorts=DELIVERY_SORTS, default="-created"
    )
    return render(
        request,
        "webhooks/detail.html",
        {"endpoint": endpoint, "form": form, "page_obj": table.page, "filters": filters, "table_sort": table.sort},
    )


@login_required
@require_POST
def endpoint_test(request, pk: int):
    _manager_required(request)
    endpoint = selectors.endpoint_get(pk=pk)
    try:
        services.endpoint_send_test(tenant=request.tenant, endpoint=endpoint)
    except (ValidationError, PlanLimitExceeded) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, "Test event queued: it appears in the delivery log below.")
    return redirect("webhooks:detail", pk=pk)


@login_required
@require_POST
def endpoint_rotate(request, pk: int):
    _manager_required(request)
    endpoint = selectors.endpoint_get(pk=pk)
    if confirm := confirmation_required(
        request,
        title="Rotate the signing secret?",
        message="A new secret signs every event from now on; the current one also signs for the grace period, "
        "so your receiver can switch without losing events.",
        label="Rotate secret",
        cancel_url=reverse("webhooks:detail", args=[pk]),
    ):
        return confirm
    services.endpoint_rotate_secret(endpoint=endpoint)
    messages.success(request, "New signing secret created; the previous one stays valid for the grace period.")
    return redirect("webhooks:detail", pk=pk)


@login_required
@require_POST
def endpoint_delete_view(request, pk: int):
    _manager_required(request)
    endpoint = selectors.endpoint_get(pk=pk)
    if confirm := confirmation_required(
        request,
        title=f"Delete the endpoint {endpoint.url}?",
        message="No more events are sent to it, and its delivery log is deleted.",
        label="Delete endpoint",
        cancel_url=reverse("webhooks:detail", args=[pk]),
    ):
        return confirm
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, "Endpoint deleted.")
    return redirect("webhooks:list")


@login_required
@require_POST
def delivery_replay_view(request, pk: int, delivery_pk: int):
    _manager_required(request)
    endpoint = selectors.endpoint_get(pk=pk)
    services.delivery_replay(delivery=selectors.delivery_get(pk=delivery_pk, endpoint=endpoint))
    messages.success(request, "Delivery queued again.")
    return redirect("webhooks:detail", pk=pk)
