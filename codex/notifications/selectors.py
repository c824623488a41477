"""Reads of the notification centre: always the member's own notices."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Notification


def notifications_for(*, user, unread_only: bool = False, after_id: int | None = None) -> QuerySet[Notification]:
    """The member's notices, newest first (none for a caller without a user, e.g. an API key)."""
    qs = Notification.objects.filter(recipient_id=user.pk) if user.pk is not None else Notification.objects.none()
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    return qs.order_by("-created_at", "-pk")


def notifications_unread_count(*, user) -> int:
    if user.pk is None:
        return 0
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()
