"""The notification centre page (works without JavaScript; the bell's script adds live updates)."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from codex.tables import TableFilterForm, table_page

from . import selectors, services
from .models import Notification, NotificationKind


class NotificationFilterForm(TableFilterForm):
    kind = forms.ChoiceField(label="Kind", choices=[("", "All kinds"), *NotificationKind.choices], required=False)
    state = forms.ChoiceField(
        label="State", choices=[("", "Read and unread"), ("unread", "Unread"), ("read", "Read")], required=False
    )

    lookups: ClassVar = {
        "kind": "kind",
        "state": lambda qs, value: qs.filter(read_at__isnull=value == "unread"),
    }


NOTIFICATION_SORTS = {"created": "created_at", "kind": "kind", "title": "title"}


@login_required
def notification_list(request):
    filters = NotificationFilterForm(request.GET)
    table = table_page(
        request,
        filters.filter(selectors.notifications_for(user=request.user)),
        sorts=NOTIFICATION_SORTS,
        default="-created",
        per_page=50,
    )
    return render(
        request,
        "notifications/list.html",
        {"page": table.page, "notifications": table.page.object_list, "filters": filters, "table_sort": table.sort},
    )


@login_required
@require_POST
def notification_mark_read(request):
    """Mark all the member's notices read, or the one named by ``id``; back to ``next``."""
    raw = request.POST.get("id", "")
    if raw and not raw.isdigit():
        messages.error(request, "id: a notification id (a whole number).")
        return redirect("notifications:list")
    marked = services.notifications_mark_read(user=request.user, ids=[int(raw)] if raw else None)
    if not raw:
        messages.success(request, f"{marked} notification(s) marked read.")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("notifications:list")


@login_required
@require_POST
def notification_open(request, pk: int):
    """Mark the notice read and go where it points (the list when it points nowhere)."""
    notification = get_object_or_404(Notification, pk=pk, recipient_id=request.user.pk)
    services.notifications_mark_read(user=request.user, ids=[notification.pk])
    return redirect(notification.url or "notifications:list")
