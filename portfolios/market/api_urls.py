"""Market data API routes, included from ``portfolios.api_urls`` (inside the ``api`` namespace)."""

from rest_framework.routers import SimpleRouter

from .api import FxRateViewSet, InstrumentViewSet

router = SimpleRouter()
router.register("instruments", InstrumentViewSet, basename="instrument")
router.register("fx-rates", FxRateViewSet, basename="fx-rate")

urlpatterns = router.urls
