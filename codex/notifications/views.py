"""The notification centre page (works without JavaScript; the bell's script adds live updates)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import selectors, services
from .models import Notification


@login_required
def notification_list(request):
    page = Paginator(selectors.notifications_for(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page, "notifications": page.object_list})


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
