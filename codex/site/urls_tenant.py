"""URLs of a firm's host: its web UI and its API."""

from django.conf import settings
from django.urls import include, path

from . import views
from .urls_common import handler400, handler403, handler404, handler500, health_urls  # noqa: F401
from .urls_web import firm_web_urls

urlpatterns = [
    *health_urls,
    path("", views.home, name="home"),
    *firm_web_urls,
    path("accounts/security/", include("tenants.accounts.urls_security")),
    path("accounts/", include("tenants.accounts.urls", namespace="accounts")),
    path("api/v1/", include(("codex.site.urls_api_v1", "api"), namespace="api")),
]

if settings.CODEX_BENCH_VIEWS:
    # The C0 view through the whole middleware stack (docs/benchmarks.md); off unless `make bench`.
    from bench.ceiling_views import ping  # function-level: benchmark-only view, off unless CODEX_BENCH_VIEWS

    urlpatterns.insert(0, path("bench/ping/", ping))

# Domain apps keep their pages in their own urls module.
urlpatterns += [
    path("portfolios/", include("portfolios.urls")),
    path("crm/", include("crm.urls")),
    path("billing/", include("billing.urls")),
    path("settings/webhooks/", include("webhooks.urls")),
    path("notifications/", include("codex.notifications.urls")),
    path("fees/", include("fees.urls")),
    # The client portal: /portal/ (clients) and /client-portal/ (staff).
    path("", include("portal.urls")),
]
