"""Routes of a firm's accounts: sign-in and out, passwords, the team, invitations, API keys, the
audit log and support sessions (included under ``/accounts/`` by the firm's URLconf)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import security_views
from . import views as account_views

app_name = "accounts"

urlpatterns = [
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
    path("profile/", account_views.profile, name="profile"),
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
    path("welcome/<str:token>/", account_views.signup_welcome, name="signup-welcome"),
    path("support/end/", security_views.support_end, name="support-end"),
]
