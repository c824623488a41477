"""Operators' console: "Platform status" (live checks, last failure, uptime history)."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse

from codex.admin import operator_site

from . import checks, selectors
from .models import ServiceCheck


@admin.register(ServiceCheck, site=operator_site)
class PlatformStatusAdmin(admin.ModelAdmin):
    """Read-only: the history is written by beat's ``codex.status.record_checks`` only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        live = checks.run_all()
        history = {h.service: h for h in selectors.status_history()}
        rows = [(result, history[result.service]) for result in live]
        context = {
            **self.admin_site.each_context(request),
            "title": "Platform status",
            "rows": rows,
            "overall": "ok" if all(r.state == "ok" for r in live) else "attention",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/platform_status.html", context)


operator_site.register_index_link(
    "Platform status", "platform_status_servicecheck_changelist", "Live checks of each service, last failure, uptime"
)
