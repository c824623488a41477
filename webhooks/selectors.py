"""Reads of webhooks. Only the firm's owners and admins see endpoints and their deliveries."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoints_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("-created_at", "-pk")


def endpoint_get(*, pk: int) -> WebhookEndpoint:
    """The endpoint (of the firm whose schema is active) or Http404."""
    return get_object_or_404(WebhookEndpoint, pk=pk)


def deliveries_of(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The delivery log, newest first, with each attempt: three queries per page."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number")))
        .order_by("-created_at", "-pk")
    )


def delivery_get(*, pk: int, endpoint: WebhookEndpoint | None = None) -> WebhookDelivery:
    """The delivery (of ``endpoint`` if given) in the active firm's schema, or Http404."""
    deliveries = WebhookDelivery.objects.select_related("event", "endpoint")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return get_object_or_404(deliveries, pk=pk)
