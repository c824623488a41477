"""URLs of the base domain: the public site, sign-up and the operators' admin."""

from django.urls import include, path

from billing import views as billing_views
from codex.admin import operator_site
from codex.metrics import metrics_view
from codex.security.views import security_txt
from tenants import views as tenant_views

from . import public_pages
from .urls_common import handler400, handler403, handler404, handler500, health_urls  # noqa: F401
from .urls_web import common_web_urls

urlpatterns = [
    *health_urls,
    path("metrics", metrics_view, name="metrics"),
    path("", public_pages.landing, name="landing"),
    path("signup/", public_pages.signup, name="signup"),
    path("pricing/", public_pages.pricing, name="pricing"),
    path("status/", tenant_views.status, name="status"),
    path("find-your-firm/", tenant_views.find_firm, name="find-firm"),
    *common_web_urls,
    path("accounts/security/", include("tenants.accounts.urls_security")),
    path(".well-known/security.txt", security_txt, name="security-txt"),
    path("admin/", operator_site.urls),
    path("billing/webhooks/stripe/", billing_views.stripe_webhook, name="billing-stripe-webhook"),
]
