"""Everything under /api/v1/, shared by firm hosts and the API host. Apps add their routes here."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from codex.views import api_not_found
from tenants import api as tenants_api
from tenants.accounts import api as accounts_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("me/", tenants_api.MeView.as_view(), name="me"),
    path("tenant/", tenants_api.TenantView.as_view(), name="tenant"),
    path("auth/token/", tenants_api.TokenView.as_view(), name="token"),
    path("auth/token/revoke/", accounts_api.TokenRevokeView.as_view(), name="token-revoke"),
    path("audit-events/", accounts_api.AuditEventListView.as_view(), name="audit-event-list"),
    path("api-keys/", tenants_api.ApiKeyListCreateView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/revoke/", tenants_api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]

# Domain apps register their API routes in their own api_urls module.
for module in ("portfolios.api_urls", "crm.api_urls", "billing.api_urls", "webhooks.api_urls"):
    try:
        urlpatterns.append(path("", include(module)))
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise

# Last: anything else under /api/v1/ is a JSON 404, also with DEBUG on.
urlpatterns.append(re_path(r"^.*$", api_not_found))
