"""Webhook routes under /api/v1/ (namespace ``api``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("webhook-endpoints", api.WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    path("webhook-events/", api.EventTypeListView.as_view(), name="webhook-event-list"),
    path("webhook-events/<str:type>/", api.EventExampleView.as_view(), name="webhook-event-example"),
    path("webhook-deliveries/<int:pk>/replay/", api.DeliveryReplayView.as_view(), name="webhook-delivery-replay"),
    *router.urls,
]
