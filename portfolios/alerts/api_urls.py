"""Alerts API routes, included from ``portfolios.api_urls`` (inside the ``api`` namespace)."""

from rest_framework.routers import SimpleRouter

from .api import AlertEventViewSet, AlertRuleViewSet

router = SimpleRouter()
router.register("alerts/rules", AlertRuleViewSet, basename="alert-rule")
router.register("alerts/events", AlertEventViewSet, basename="alert-event")

urlpatterns = router.urls
