"""URLs of a firm's host: its web UI and its API."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tenants.accounts import security_views
from tenants.accounts import views as account_views

from . import views
from .urls_common import handler400, handler403, handler404, handler500, health_urls  # noqa: F401
from .urls_web import firm_web_urls

account_patterns = [
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logout/everywhere/", account_views.sign_out_everywhere, name="logout-everywhere"),
    path(
        "password/change/",
        account_views.PasswordChangeView.as_view(
            template_name="accounts/form_page.html",
            success_url="/accounts/password/change/done/",
            extra_context={"title": "Change password"},
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/message.html", extra_context={"title": "Password changed"}
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        account_views.PasswordResetView.as_view(
            template_name="accounts/form_page.html",
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
            success_url="/accounts/password/reset/sent/",
            extra_context={"title": "Reset your password"},
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="accounts/message.html",
            extra_context={"title": "Check your e-mail", "body": "If the address is known here, a link is on its way."},
        ),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(
            template_name="accounts/form_page.html",
            success_url="/accounts/password/reset/complete/",
            extra_context={"title": "Choose a new password"},
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/message.html",
            extra_context={"title": "Password set", "body": "You can sign in with your new password."},
        ),
        name="password_reset_complete",
    ),
    path("team/", account_views.team, name="team"),
    path("team/<int:pk>/role/", account_views.change_role, name="change-role"),
    path("team/<int:pk>/deactivate/", account_views.deactivate, name="deactivate"),
    path("team/<int:pk>/reactivate/", account_views.reactivate, name="reactivate"),
    path("team/<int:pk>/reset-2fa/", account_views.two_factor_reset, name="reset-2fa"),
    path("team/invitations/<int:pk>/revoke/", account_views.revoke_invitation, name="revoke-invitation"),
    path("invitation/<str:token>/", account_views.accept_invitation, name="accept-invitation"),
    path("api-keys/", account_views.api_keys, name="api-keys"),
    path("api-keys/<int:pk>/revoke/", account_views.api_key_revoke_view, name="api-key-revoke"),
    path("audit/", security_views.audit_log, name="audit"),
    path("support/enter/<str:token>/", security_views.support_enter, name="support-enter"),
    path("support/end/", security_views.support_end, name="support-end"),
]

urlpatterns = [
    *health_urls,
    path("", views.home, name="home"),
    *firm_web_urls,
    path("accounts/security/", include("tenants.accounts.urls_security")),
    path("accounts/", include((account_patterns, "accounts"), namespace="accounts")),
    path("api/v1/", include(("codex.urls_api_v1", "api"), namespace="api")),
]

if settings.CODEX_BENCH_VIEWS:
    # The C0 view through the whole middleware stack (docs/benchmarks.md); off unless `make bench`.
    from bench.ceiling_views import ping

    urlpatterns.insert(0, path("bench/ping/", ping))

# Domain apps add their pages in their own urls module.
for prefix, module in (
    ("portfolios/", "portfolios.urls"),
    ("crm/", "crm.urls"),
    ("billing/", "billing.urls"),
    ("settings/webhooks/", "webhooks.urls"),
):
    try:
        urlpatterns.append(path(prefix, include(module)))
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
