"""API routes of the portfolios app (under /api/v1/, namespace ``api``). Sub-apps are included here."""

from django.urls import include, path

urlpatterns = [
    path("", include("portfolios.market.api_urls")),
]
