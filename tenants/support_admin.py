"""Operator console side of support access: a form asking for the reason, then a redirect to the
firm's host with a single-use token (see codex.security.support)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from codex.security.net import client_ip
from codex.security.support import MIN_REASON_LENGTH, support_token_issue

from .models import Tenant
from .services import firm_url


class SupportReasonForm(forms.Form):
    reason = forms.CharField(
        min_length=MIN_REASON_LENGTH,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the firm's audit log, which its owners see. E.g. the ticket number and the problem.",
    )


def support_start_view(model_admin, request, object_id):

    if not request.user.is_superuser:
        raise PermissionDenied("Only superusers open support sessions.")
    tenant = get_object_or_404(Tenant, pk=object_id)
    form = SupportReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token = support_token_issue(
                operator=request.user, tenant=tenant, reason=form.cleaned_data["reason"], ip=client_ip(request)
            )
        except ValidationError as exc:
            form.add_error("reason", exc.message_dict.get("reason", exc.messages))
        else:
            return HttpResponseRedirect(firm_url(tenant.slug, f"/accounts/support/enter/{token}/"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Open a read-only support session at {tenant.name}",
        "tenant_obj": tenant,
        "form": form,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "security/support_start.html", context)
