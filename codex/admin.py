"""The operators' console: the Django admin on the base domain, shared (public-schema) models only.

Firm-only apps (portfolios, CRM) are never registered here: their tables do not exist in the public
schema, and firm staff work in the web UI.
"""

from django.conf import settings
from django.contrib import admin


class OperatorAdminSite(admin.AdminSite):
    site_header = "Codex operators"
    site_title = "Codex operators"
    index_title = "Platform"

    def has_permission(self, request):
        # Like django-otp's OTPAdminSite: the password alone never opens the console. The sign-in
        # itself stays Django's; codex.security.middleware.TwoFactorMiddleware then asks for the
        # TOTP code (or enrolment) before any /admin/ page.
        if not super().has_permission(request):
            return False
        return not settings.CODEX_OPERATOR_REQUIRE_2FA or request.user.is_verified()


operator_site = OperatorAdminSite(name="admin")


def register_operator_admins() -> None:
    """Imported for their side effect: each app's ``admin`` module registers on ``operator_site``."""
    from importlib import import_module

    for module in (
        "tenants.admin",
        "tenants.accounts.admin",
        "billing.admin",
        "portfolios.market.admin",
        "codex.status.admin",
    ):
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
