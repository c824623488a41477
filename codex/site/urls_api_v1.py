"""Everything under /api/v1/, shared by firm hosts and the API host. Apps add their routes here."""

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from codex.site.views import api_not_found
from tenants import api as tenants_api
from tenants.accounts import api as accounts_api

from . import history_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("me/", tenants_api.MeView.as_view(), name="me"),
    path("tenant/", tenants_api.TenantView.as_view(), name="tenant"),
    path("auth/token/", tenants_api.TokenView.as_view(), name="token"),
    path("auth/token/revoke/", accounts_api.TokenRevokeView.as_view(), name="token-revoke"),
    path("audit-events/", accounts_api.AuditEventListView.as_view(), name="audit-event-list"),
    path("api-keys/", tenants_api.ApiKeyListCreateView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/revoke/", tenants_api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("contacts/<int:pk>/history/", history_api.ContactHistoryView.as_view(), name="contact-history"),
    path("portfolios/<int:pk>/history/", history_api.PortfolioHistoryView.as_view(), name="portfolio-history"),
    path(
        "portfolios/<int:portfolio_pk>/transactions/<int:pk>/history/",
        history_api.TransactionHistoryView.as_view(),
        name="transaction-history",
    ),
]

# Domain apps keep their API routes in their own api_urls module.
urlpatterns += [
    path("", include("portfolios.api_urls")),
    path("", include("crm.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("webhooks.api_urls")),
    path("", include("codex.notifications.api_urls")),
    path("", include("fees.api_urls")),
    path("", include("portal.api_urls")),
]

# Last: anything else under /api/v1/ is a JSON 404, also with DEBUG on.
urlpatterns.append(re_path(r"^.*$", api_not_found))
