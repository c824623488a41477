"""Market data API routes, included from ``portfolios.api_urls`` (inside the ``api`` namespace)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import FeedRunViewSet, FxRateViewSet, InstrumentPriceListView, InstrumentViewSet, ManualPriceImportView

router = SimpleRouter()
router.register("instruments", InstrumentViewSet, basename="instrument")
router.register("fx-rates", FxRateViewSet, basename="fx-rate")
router.register("market/feed-runs", FeedRunViewSet, basename="feed-run")

urlpatterns = [
    path("instruments/prices/import/", ManualPriceImportView.as_view(), name="instrument-prices-import"),
    path("instruments/<int:pk>/prices/", InstrumentPriceListView.as_view(), name="instrument-prices"),
    *router.urls,
]
