"""Writes of the notification centre.

``notification_send`` is what other apps call, inside the transaction of the change it announces:
the rows commit with it, and the live push (``codex.live``) goes out after the commit, so a rolled
back change notifies nobody. The rows are the record; the push is a hint a page may miss (it then
catches up by replay or by polling).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.db import current_schema
from codex.live.publish import live_publish

from .models import Notification, NotificationKind
from .signals import notifications_read

EVENT_NEW = "notification"
EVENT_READ = "notification.read"


def notification_payload(notification: Notification, *, unread: int) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "kind_label": notification.get_kind_display(),
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "created_at": notification.created_at.isoformat(),
        "unread": notification.read_at is None,
        "unread_count": unread,
    }


def notification_send(
    *, recipients: Iterable, kind: str, title: str, body: str = "", url: str = "", source: str = ""
) -> list[Notification]:
    """Notify each recipient (users or user ids) once; returns the notices created.

    Atomic. Idempotent per ``source``: a member already notified for that source gets nothing new
    (a retried task notifies nobody twice). ``kind`` must be a ``NotificationKind``; ``url`` a path
    on the firm's host (``ValidationError`` naming the field otherwise). The push to open pages is
    queued for after the commit."""
    if kind not in NotificationKind.values:
        raise ValidationError({"kind": f"Unknown notification kind {kind!r}."})
    if url and (not url.startswith("/") or url.startswith("//")):
        raise ValidationError({"url": "A notification links to a path on the firm's host, e.g. /crm/tasks/."})
    title = " ".join((title or "").split())[:200]
    if not title:
        raise ValidationError({"title": "A notification needs a title."})
    # a caller without a member (an API key) is nobody to notify
    ids = sorted({uid for uid in (getattr(r, "pk", r) for r in recipients if r is not None) if uid is not None})
    if not ids:
        return []
    now = timezone.now()
    with transaction.atomic():
        if source:
            already = set(
                Notification.objects.filter(source=source, recipient_id__in=ids).values_list("recipient_id", flat=True)
            )
            ids = [uid for uid in ids if uid not in already]
        rows = Notification.objects.bulk_create(
            [
                Notification(recipient_id=uid, kind=kind, title=title, body=body[:500], url=url, source=source,
                             created_at=now)
                for uid in ids
            ]
        )  # fmt: skip
        if rows:
            schema = current_schema()
            created = [row.pk for row in rows]
            transaction.on_commit(lambda: _push_new(schema, created))
    return rows


def _unread_counts(user_ids: list[int]) -> dict[int, int]:
    return dict(
        Notification.objects.filter(recipient_id__in=user_ids, read_at__isnull=True)
        .values_list("recipient_id")
        .annotate(n=Count("pk"))
        .values_list("recipient_id", "n")
    )


def _push_new(schema: str, notification_ids: list[int]) -> None:
    with schema_context(schema):
        rows = list(Notification.objects.filter(pk__in=notification_ids))
        counts = _unread_counts([row.recipient_id for row in rows])
    for row in rows:
        live_publish(
            schema=schema,
            event=EVENT_NEW,
            data=notification_payload(row, unread=counts.get(row.recipient_id, 0)),
            user_ids=[row.recipient_id],
        )


def _push_read(schema: str, user_id: int, ids: list[int] | None) -> None:
    with schema_context(schema):
        unread = _unread_counts([user_id]).get(user_id, 0)
    live_publish(schema=schema, event=EVENT_READ, data={"ids": ids, "unread_count": unread}, user_ids=[user_id])


def notifications_mark_read(*, user, ids: Iterable[int] | None = None) -> int:
    """Mark the member's unread notices read (all, or those of ``ids`` that are theirs); returns
    how many. Other open pages of that member are told (their bell updates), and apps that keep a
    read state of their own hear ``notifications_read`` (alerts)."""
    with transaction.atomic():
        qs = Notification.objects.select_for_update().filter(recipient_id=user.pk, read_at__isnull=True)
        if ids is not None:
            qs = qs.filter(pk__in=list(ids))
        marked = list(qs.values_list("pk", "source"))
        Notification.objects.filter(pk__in=[pk for pk, _ in marked]).update(read_at=timezone.now())
        sources = [source for _, source in marked if source]
        if sources:
            notifications_read.send(sender=Notification, user=user, sources=sources)
        if marked:
            schema = current_schema()
            pushed = None if ids is None else [pk for pk, _ in marked]
            transaction.on_commit(lambda: _push_read(schema, user.pk, pushed))
    return len(marked)


def notifications_mark_read_for_sources(*, user, sources: Iterable[str]) -> int:
    """Mark read the member's notices raised by ``sources`` (an app whose own page was read: the
    alerts page). Sends no ``notifications_read`` (the caller already knows)."""
    sources = [s for s in sources if s]
    if not sources or user.pk is None:
        return 0
    with transaction.atomic():
        qs = Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True, source__in=sources)
        ids = list(qs.values_list("pk", flat=True))
        marked = Notification.objects.filter(pk__in=ids).update(read_at=timezone.now())
        if marked:
            schema = current_schema()
            transaction.on_commit(lambda: _push_read(schema, user.pk, ids))
    return marked
