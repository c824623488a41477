"""Security pages, included at /accounts/security/ on firm hosts and on the public host."""

from django.urls import path

from . import security_views as views

app_name = "security"

urlpatterns = [
    path("", views.security_overview, name="overview"),
    path("2fa/setup/", views.two_factor_setup, name="2fa-setup"),
    path("2fa/verify/", views.two_factor_verify, name="2fa-verify"),
    path("recovery-codes/", views.recovery_codes_regenerate, name="recovery-codes"),
    path("2fa/disable/", views.two_factor_disable, name="2fa-disable"),
    path("sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
]
