"""The operators' console: the Django admin on the base domain, shared (public-schema) models only.

Firm-only apps (portfolios, CRM) are never registered here: their tables do not exist in the public
schema, and firm staff work in the web UI.
"""

from importlib import import_module

from django.conf import settings
from django.contrib import admin
from django.urls import reverse


class OperatorAdminSite(admin.AdminSite):
    site_header = "Codex operators"
    site_title = "Codex operators"
    index_title = "Platform"

    index_template = "admin/codex_index.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Facts shown on the console's first page, registered by the apps (e.g. the last backup).
        self.index_panels: dict = {}
        # Console pages that are not a model's list (revenue, platform status), linked from the first
        # page: (label, URL name in this site's namespace, one line on what it shows).
        self.index_links: list[tuple[str, str, str]] = []

    def register_index_panel(self, name: str, compute) -> None:
        self.index_panels[name] = compute

    def register_index_link(self, label: str, url_name: str, description: str) -> None:
        self.index_links.append((label, url_name, description))

    def index(self, request, extra_context=None):
        panels = {name: compute() for name, compute in self.index_panels.items()}
        links = [
            {"label": label, "url": reverse(f"{self.name}:{url_name}"), "description": description}
            for label, url_name, description in self.index_links
        ]
        return super().index(request, {**(extra_context or {}), **panels, "console_links": links})

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


class RefuseDeleteMixin:
    """For records the console must never delete: no delete button or bulk action, and the delete
    URL answers with the reason (a message on the record's page) instead of a bare 403.

    Public-schema rows that firms' schemas refer to (users, instruments) cannot be deleted by a
    cascade from the public schema, which does not see the firms' tables; others (subscriptions,
    firms) have a lifecycle of their own that the console offers instead.
    """

    delete_refusal = "This record cannot be deleted from the console."

    def has_delete_permission(self, request, obj=None):
        return False

    def delete_view(self, request, object_id, extra_context=None):
        from django.contrib import messages
        from django.shortcuts import redirect
        from django.urls import reverse

        opts = self.model._meta
        self.message_user(request, self.delete_refusal, messages.ERROR)
        return redirect(reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[object_id]))
