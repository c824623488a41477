"""Market data API routes, included from ``portfolios.api_urls`` (inside the ``api`` namespace)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import FxRateViewSet, InstrumentPriceListView, InstrumentViewSet

router = SimpleRouter()
router.register("instruments", InstrumentViewSet, basename="instrument")
router.register("fx-rates", FxRateViewSet, basename="fx-rate")

urlpatterns = [
    path("instruments/<int:pk>/prices/", InstrumentPriceListView.as_view(), name="instrument-prices"),
    *router.urls,
]
