"""Operator console: suspending firms takes a reason (the firms' people read it on the page they see
instead of Codex) and a confirmation page listing the firms, without JavaScript (docs/decisions/1232)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from . import services


class SuspendForm(forms.Form):
    reason = forms.CharField(
        max_length=services.SUSPENSION_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the firm's signed-in people on the page they see instead of Codex, and kept "
        "in its audit log. E.g. “Invoice 2026-0042 unpaid since 1 Nov” or “At the firm's request”.",
        error_messages={"required": "Say why: the firm's people will read it."},
    )


def suspend_confirm_view(model_admin, request, queryset):
    """The admin action's second step. Without ``confirmed=yes`` and a reason, nothing changes."""
    form = SuspendForm(request.POST if request.POST.get("confirmed") == "yes" else None)
    if form.is_bound and form.is_valid():
        done = []
        for tenant in queryset:
            try:
                services.tenant_suspend(tenant=tenant, actor=request.user.email, reason=form.cleaned_data["reason"])
            except services.InvalidTransition as exc:
                model_admin.message_user(request, f"{tenant.slug}: {exc}", messages.WARNING)
            except ValidationError as exc:
                model_admin.message_user(request, f"{tenant.slug}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                done.append(tenant.slug)
        if done:
            model_admin.message_user(request, f"Suspended: {', '.join(done)}.")
        return None  # back to the list of firms
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Suspend firms",
        "firms": list(queryset),
        "form": form,
        "opts": model_admin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": "suspend",
    }
    return TemplateResponse(request, "admin/tenants/suspend_confirm.html", context)
