"""URLs of the API host ``api.<base domain>``: the API only, firm chosen by the API key."""

from django.urls import include, path

from .urls_common import handler400, handler403, handler404, handler500, health_urls  # noqa: F401

urlpatterns = [
    *health_urls,
    path("api/v1/", include(("codex.site.urls_api_v1", "api"), namespace="api")),
]
