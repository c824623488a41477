"""Activities and tasks: log, create, update, complete."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from tenants.accounts.models import User

from .. import access
from ..models import Activity, ActivityKind, Company, Contact, Deal
from .common import StateConflict, _check_linked_visible, _full_clean, _owner_for

# --- activities and tasks ---------------------------------------------------------------------------


def activity_create(
    *,
    actor,
    kind: str,
    subject: str,
    body: str = "",
    contact: Contact | None = None,
    company: Company | None = None,
    deal: Deal | None = None,
    owner: User | None = None,
    occurred_at: dt.datetime | None = None,
    due_date: dt.date | None = None,
    source: str = "",
) -> Activity:
    """Log a note, call, e-mail or meeting, or open a task (tasks need nothing else; a due date is
    optional). Linked records must be in the actor's book."""
    access.require_write(actor)
    if kind != ActivityKind.TASK and due_date is not None:
        raise ValidationError({"due_date": "Only tasks have a due date."})
    _check_linked_visible(actor, contact=contact, company=company, deal=deal)
    activity = Activity(
        kind=kind,
        subject=(subject or "").strip(),
        body=body or "",
        contact=contact,
        company=company,
        deal=deal,
        owner=_owner_for(actor, owner),
        occurred_at=occurred_at or timezone.now(),
        due_date=due_date,
        source=source,
    )
    with transaction.atomic():
        _full_clean(activity)
        activity.save()
        if activity.kind == ActivityKind.TASK and activity.owner_id not in (None, getattr(actor, "pk", None)):
            _notify_task_assigned(activity)
    return activity


def _notify_task_assigned(task: Activity) -> None:
    """The task's owner hears of it in the notification centre (inside the caller's transaction)."""
    due = f"Due {task.due_date:%Y-%m-%d}." if task.due_date else ""
    notification_send(
        recipients=[task.owner_id],
        kind=NotificationKind.TASK,
        title=f"New task: {task.subject}",
        body=due,
        url="/crm/tasks/",
        source=f"task:{task.pk}",
    )


def task_create(
    *,
    owner: User,
    title: str,
    due_date: dt.date | None = None,
    contact: Contact | None = None,
    body: str = "",
    source: str = "",
) -> Activity:
    """Open a task for ``owner`` on behalf of the system (portfolio alerts, imports, merges).

    No actor check: the caller decided the task is due. Idempotent per ``source``: if an open task
    with the same non-empty ``source`` exists for that owner, it is returned instead of a second one
    (so a re-run alert evaluation does not pile up tasks).
    """
    if owner is None:
        raise ValidationError({"owner": "A task needs an owner."})
    title = (title or "").strip()[:200]
    if not title:
        raise ValidationError({"title": "A task needs a title."})
    with transaction.atomic():
        if source:
            existing = (
                Activity.objects.select_for_update()
                .filter(kind=ActivityKind.TASK, owner=owner, source=source, completed_at__isnull=True)
                .first()
            )
            if existing is not None:
                return existing
        task = Activity.objects.create(
            kind=ActivityKind.TASK,
            subject=title,
            body=body or "",
            contact=contact,
            owner=owner,
            due_date=due_date,
            source=source[:100],
        )
        # an alert's task: the alert itself is already in the owner's notices
        if not source.startswith("alert:"):
            _notify_task_assigned(task)
        return task


def activity_update(*, actor, activity: Activity, **fields) -> Activity:
    access.require_write(actor)
    allowed = {"subject", "body", "occurred_at", "due_date", "kind", "contact", "company", "deal"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"unknown activity fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(activity, name, value)
    if activity.kind != ActivityKind.TASK and (activity.due_date or activity.completed_at):
        if fields.get("due_date") is not None:
            raise ValidationError({"due_date": "Only tasks have a due date."})
        # The request only changes the kind: the task's stored due date (or completion) is what
        # refuses it, a conflict with the record's state (409).
        raise StateConflict({"kind": "This task has a due date or is done: clear the due date to change its kind."})
    _check_linked_visible(actor, contact=fields.get("contact"), company=fields.get("company"), deal=fields.get("deal"))
    _full_clean(activity)
    activity.save()
    return activity


def task_complete(*, actor, task: Activity, done: bool = True) -> Activity:
    """Mark a task done (or not done again). Idempotent."""
    access.require_write(actor)
    if task.kind != ActivityKind.TASK:
        raise ValidationError({"kind": "Only tasks are completed."})
    if done and task.completed_at is None:
        task.completed_at = timezone.now()
    elif not done:
        task.completed_at = None
    task.save(update_fields=["completed_at"])
    return task
