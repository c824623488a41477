"""CRM writes. Keyword-only, validated, atomic; side effects (mail, tasks) queued with on_commit.

Callers pass the acting user (``actor``: a User or an API key principal) so the advisor's book
(crm.access) is applied here too, not only in views. Errors: ``django.core.exceptions.ValidationError``
with field messages, ``PermissionDenied``, ``billing.entitlements.PlanLimitExceeded``.

Over 600 lines because the writes of the CRM's four entities (contacts, companies, deals,
activities), their merge and the import commit share the book and linking helpers at the top; the
newsletter's writes are in crm.newsletter.services. Next to move out: merge and imports.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.entitlements import check_can_add, check_feature
from codex import imports as engine
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.outbox.services import event_emit
from tenants.accounts.models import User

from . import access, events
from .imports import SPECS, search_indexes_merge
from .models import (
    Activity,
    ActivityKind,
    Company,
    Contact,
    Deal,
    DealStageChange,
    DealStatus,
    ImportJob,
    ImportStatus,
    Lifecycle,
    PipelineStage,
    StageKind,
    Subscriber,
)
from .record_sources import contact_merging

logger = logging.getLogger(__name__)

DEFAULT_STAGES = [
    ("Lead", 10, StageKind.OPEN),
    ("Qualified", 25, StageKind.OPEN),
    ("Proposal", 50, StageKind.OPEN),
    ("Negotiation", 75, StageKind.OPEN),
    ("Won", 100, StageKind.WON),
    ("Lost", 0, StageKind.LOST),
]

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "other_emails",
    "other_phones",
    "company",
    "job_title",
    "lifecycle",
    "owner",
    "tags",
    "source",
    "notes",
)
COMPANY_FIELDS = ("name", "domain", "website", "phone", "industry", "owner", "tags", "notes")
DEAL_FIELDS = ("title", "contact", "company", "amount", "currency", "probability", "expected_close", "owner", "notes")


# --- helpers ----------------------------------------------------------------------------------------


class NameTaken(ValidationError):
    """A name (or address) that must be unique is already used: a conflict with the stored state (the API
    answers 409 naming the field; pages show it as the field's error)."""


class StateConflict(ValidationError):
    """The record's current state does not allow the change (a finished import, a contact who is
    still a portfolio's client): a conflict with the stored state, 409 in the API (the field's error
    in ``details``), the form's error on pages."""


def _actor_user(actor) -> User | None:
    """The User behind an actor (None for an API key or the system)."""
    return actor if isinstance(actor, User) else None


def _owner_for(actor, requested):
    """Advisors own what they create; managers and write keys may give it to any active member."""
    if requested is not None and not isinstance(requested, User):
        raise ValidationError({"owner": "Choose a member of the firm."})
    if access.can_assign_owner(actor):
        return requested if requested is not None else _actor_user(actor)
    if requested is not None and requested.pk != getattr(actor, "pk", None):
        raise ValidationError({"owner": "Only owners and admins give a record to someone else."})
    return _actor_user(actor)


def _clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned = []
    for tag in tags:
        tag = str(tag).strip().lower()
        if len(tag) > 50:
            raise ValidationError({"tags": f"Tag “{tag[:20]}…” is longer than 50 characters."})
        if tag and tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def _full_clean(obj, *, exclude=None) -> None:
    obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)


def _check_linked_visible(actor, *, contact=None, company=None, deal=None) -> None:
    """A record may only be linked to contacts, companies and deals the actor can see."""
    if contact is not None and not access.contacts_for(actor).filter(pk=contact.pk).exists():
        raise ValidationError({"contact": "No such contact."})
    if company is not None and not access.companies_for(actor).filter(pk=company.pk).exists():
        raise ValidationError({"company": "No such company."})
    if deal is not None and not access.deals_for(actor).filter(pk=deal.pk).exists():
        raise ValidationError({"deal": "No such deal."})


# --- contacts ---------------------------------------------------------------------------------------


def _email_taken(email: str, *, exclude_pk=None) -> bool:
    if not email:
        return False
    qs = Contact.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def _normalise_contact(contact: Contact) -> None:
    contact.first_name = (contact.first_name or "").strip()
    contact.last_name = (contact.last_name or "").strip()
    contact.email = (contact.email or "").strip().lower()
    contact.other_emails = [e.strip().lower() for e in (contact.other_emails or []) if e and e.strip()]
    contact.other_phones = [p.strip() for p in (contact.other_phones or []) if p and p.strip()]
    contact.tags = _clean_tags(contact.tags)
    errors = {}
    for extra in contact.other_emails:
        try:
            validate_email(extra)
        except ValidationError:
            errors["other_emails"] = f"“{extra}” is not a valid e-mail address."
    if errors:
        raise ValidationError(errors)


def contact_create(*, actor, tenant, first_name: str, shared_with=(), check_limit: bool = True, **fields) -> Contact:
    """Create a contact. Checks the plan's contact limit and the firm-wide unique e-mail (409-worthy
    duplicates raise ValidationError on ``email``). Atomic."""
    access.require_write(actor)
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"unknown contact fields: {sorted(unknown)}")
    owner = _owner_for(actor, fields.pop("owner", None))
    contact = Contact(first_name=first_name, owner=owner, **fields)
    _normalise_contact(contact)
    _full_clean(contact)
    if contact.company is not None:
        _check_linked_visible(actor, company=contact.company)
    with transaction.atomic():
        if check_limit:
            check_can_add(tenant=tenant, resource="contacts")
        if _email_taken(contact.email):
            raise NameTaken({"email": "Another contact already has this e-mail address."})
        try:
            with transaction.atomic():
                contact.save()
        except IntegrityError as exc:  # a concurrent create won the race for this address
            raise NameTaken({"email": "Another contact already has this e-mail address."}) from exc
        if shared_with:
            contact.shared_with.set(shared_with)
        event_emit(type="contact.created", data=events.contact_data(contact), resource=f"contact:{contact.pk}")
    return contact


def contact_update(*, actor, contact: Contact, shared_with=None, **fields) -> Contact:
    """Change a contact's fields (only those given). The caller fetched it through crm.access."""
    access.require_write(actor)
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"unknown contact fields: {sorted(unknown)}")
    if "owner" in fields:
        new_owner = fields.pop("owner")
        if new_owner != contact.owner:
            if not access.can_assign_owner(actor):
                raise ValidationError({"owner": "Only owners and admins give a record to someone else."})
            contact.owner = new_owner
    for name, value in fields.items():
        setattr(contact, name, value)
    _normalise_contact(contact)
    _full_clean(contact)
    if "company" in fields and contact.company is not None:
        _check_linked_visible(actor, company=contact.company)
    with transaction.atomic():
        if _email_taken(contact.email, exclude_pk=contact.pk):
            raise NameTaken({"email": "Another contact already has this e-mail address."})
        try:
            with transaction.atomic():
                contact.save()
        except IntegrityError as exc:
            raise NameTaken({"email": "Another contact already has this e-mail address."}) from exc
        if shared_with is not None:
            if not access.can_assign_owner(actor) and getattr(actor, "pk", None) != contact.owner_id:
                raise PermissionDenied("Only the contact's owner or a manager shares it.")
            contact.shared_with.set(shared_with)
        event_emit(type="contact.updated", data=events.contact_data(contact), resource=f"contact:{contact.pk}")
    return contact


def contact_delete(*, actor, contact: Contact) -> None:
    access.require_write(actor)
    if contact.portfolios.exists():
        raise StateConflict("This contact is the client of portfolios; merge it into another contact instead.")
    contact.delete()


# --- companies --------------------------------------------------------------------------------------


def company_create(*, actor, name: str, shared_with=(), **fields) -> Company:
    access.require_write(actor)
    unknown = set(fields) - set(COMPANY_FIELDS)
    if unknown:
        raise TypeError(f"unknown company fields: {sorted(unknown)}")
    owner = _owner_for(actor, fields.pop("owner", None))
    company = Company(name=(name or "").strip(), owner=owner, **fields)
    company.tags = _clean_tags(company.tags)
    company.domain = (company.domain or "").strip().lower()
    _full_clean(company)
    with transaction.atomic():
        company.save()
        if shared_with:
            company.shared_with.set(shared_with)
    return company


def company_update(*, actor, company: Company, shared_with=None, **fields) -> Company:
    access.require_write(actor)
    unknown = set(fields) - set(COMPANY_FIELDS)
    if unknown:
        raise TypeError(f"unknown company fields: {sorted(unknown)}")
    if "owner" in fields:
        new_owner = fields.pop("owner")
        if new_owner != company.owner:
            if not access.can_assign_owner(actor):
                raise ValidationError({"owner": "Only owners and admins give a record to someone else."})
            company.owner = new_owner
    for name, value in fields.items():
        setattr(company, name, value)
    company.tags = _clean_tags(company.tags)
    company.domain = (company.domain or "").strip().lower()
    _full_clean(company)
    with transaction.atomic():
        company.save()
        if shared_with is not None:
            company.shared_with.set(shared_with)
    return company


# --- pipeline ---------------------------------------------------------------------------------------


def pipeline_stages_ensure() -> list[PipelineStage]:
    """The firm's stages; the defaults are created on first use if a firm has none (idempotent)."""
    stages = list(PipelineStage.objects.filter(is_active=True))
    if stages:
        return stages
    with transaction.atomic():
        if not PipelineStage.objects.exists():
            PipelineStage.objects.bulk_create(
                PipelineStage(name=name, position=i, probability=p, kind=kind)
                for i, (name, p, kind) in enumerate(DEFAULT_STAGES, start=1)
            )
    return list(PipelineStage.objects.filter(is_active=True))


def pipeline_stage_save(*, actor, stage: PipelineStage | None = None, **fields) -> PipelineStage:
    """Create or change a stage (managers only). Names are unique per firm, case-insensitive
    (``NameTaken`` otherwise)."""
    access.require_manager_or_key(actor)
    stage = stage or PipelineStage()
    for name, value in fields.items():
        setattr(stage, name, value)
    stage.name = (stage.name or "").strip()
    _full_clean(stage)
    if PipelineStage.objects.filter(name__iexact=stage.name).exclude(pk=stage.pk).exists():
        raise NameTaken({"name": "A stage with this name exists."})
    if stage.pk and not stage.is_active and stage.deals.filter(status=DealStatus.OPEN).exists():
        raise ValidationError({"is_active": "Move this stage's open deals first."})
    stage.save()
    return stage


def _money(value, field="amount") -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: "Enter an amount such as 1250.00."}) from exc
    if amount < 0:
        raise ValidationError({field: "The amount cannot be negative."})
    return amount


def _currency(value) -> str:
    code = (value or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError({"currency": "Use a three-letter ISO currency code such as USD."})
    return code


def deal_create(*, actor, title: str, stage: PipelineStage | None = None, shared_with=(), **fields) -> Deal:
    """Create a deal in ``stage`` (the first open stage by default); records the first stage change."""
    access.require_write(actor)
    unknown = set(fields) - set(DEAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    stages = pipeline_stages_ensure()
    stage = stage or next(s for s in stages if s.kind == StageKind.OPEN)
    owner = _owner_for(actor, fields.pop("owner", None))
    deal = Deal(title=(title or "").strip(), stage=stage, owner=owner, **fields)
    deal.amount = _money(deal.amount)
    deal.currency = _currency(deal.currency)
    if "probability" not in fields or fields["probability"] is None:
        deal.probability = stage.probability
    _apply_stage_status(deal, stage)
    _full_clean(deal)
    _check_linked_visible(actor, contact=deal.contact, company=deal.company)
    with transaction.atomic():
        deal.save()
        if shared_with:
            deal.shared_with.set(shared_with)
        DealStageChange.objects.create(deal=deal, from_stage=None, to_stage=stage, changed_by=_actor_user(actor))
    return deal


def deal_update(*, actor, deal: Deal, shared_with=None, **fields) -> Deal:
    access.require_write(actor)
    unknown = set(fields) - set(DEAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    if "owner" in fields:
        new_owner = fields.pop("owner")
        if new_owner != deal.owner:
            if not access.can_assign_owner(actor):
                raise ValidationError({"owner": "Only owners and admins give a record to someone else."})
            deal.owner = new_owner
    for name, value in fields.items():
        setattr(deal, name, value)
    deal.amount = _money(deal.amount)
    deal.currency = _currency(deal.currency)
    _full_clean(deal)
    _check_linked_visible(
        actor,
        contact=deal.contact if "contact" in fields else None,
        company=deal.company if "company" in fields else None,
    )
    with transaction.atomic():
        deal.save()
        if shared_with is not None:
            deal.shared_with.set(shared_with)
    return deal


def _apply_stage_status(deal: Deal, stage: PipelineStage, reason: str = "") -> None:
    if stage.kind == StageKind.OPEN:
        deal.status, deal.closed_at, deal.close_reason = DealStatus.OPEN, None, ""
    else:
        deal.status = DealStatus.WON if stage.kind == StageKind.WON else DealStatus.LOST
        deal.closed_at = deal.closed_at or timezone.now()
        deal.close_reason = reason or deal.close_reason


def deal_move(*, actor, deal: Deal, stage: PipelineStage, reason: str = "") -> Deal:
    """Move a deal to ``stage`` (a won/lost stage closes it, an open one reopens it), recording the
    change in the deal's history. Moving to the stage it is in does nothing. Atomic; the deal row is
    locked so two concurrent moves are serialised."""
    access.require_write(actor)
    if not stage.is_active:
        raise ValidationError({"stage": "This stage is no longer used."})
    if stage.kind == StageKind.LOST and not (reason or "").strip():
        raise ValidationError({"reason": "Say why the deal was lost."})
    with transaction.atomic():
        locked = Deal.objects.select_for_update().get(pk=deal.pk)
        if locked.stage_id == stage.pk:
            return locked
        previous = locked.stage
        locked.stage = stage
        locked.probability = stage.probability
        if stage.kind != StageKind.OPEN:
            locked.closed_at = None  # closed now, whenever it was closed before
        _apply_stage_status(locked, stage, (reason or "").strip()[:300])
        locked.save()
        DealStageChange.objects.create(
            deal=locked, from_stage=previous, to_stage=stage, changed_by=_actor_user(actor), note=reason[:300]
        )
        event_emit(
            type="deal.stage_changed", data=events.deal_stage_data(locked, previous), resource=f"deal:{locked.pk}"
        )
    return locked


def deal_close(*, actor, deal: Deal, won: bool, reason: str = "") -> Deal:
    """Mark a deal won or lost: moves it to the firm's first won (or lost) stage."""
    kind = StageKind.WON if won else StageKind.LOST
    stage = next((s for s in pipeline_stages_ensure() if s.kind == kind), None)
    if stage is None:
        raise ValidationError({"stage": f"The pipeline has no {kind} stage."})
    return deal_move(actor=actor, deal=deal, stage=stage, reason=reason)


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


# --- merge ------------------------------------------------------------------------------------------


def contact_merge(*, actor, survivor: Contact, loser: Contact) -> Contact:
    """Merge ``loser`` into ``survivor``: activities, deals, portfolios, subscriptions and shares move;
    blank fields of the survivor are filled from the loser; the loser's e-mail and phone are kept as
    extra ones; a note on the survivor's timeline records the merge; the loser is deleted. Atomic."""
    access.require_write(actor)
    if survivor.pk == loser.pk:
        raise ValidationError({"loser": "Choose two different contacts."})
    with transaction.atomic():
        survivor, loser = (
            Contact.objects.select_for_update().get(pk=survivor.pk),
            Contact.objects.select_for_update().get(pk=loser.pk),
        )
        loser_label = f"{loser} <{loser.email}>" if loser.email else str(loser)
        moved = {
            "activities": Activity.objects.filter(contact=loser).update(contact=survivor),
            "deals": Deal.objects.filter(contact=loser).update(contact=survivor),
        }
        # Rows of apps above crm (portfolios) move through their receivers, in this transaction.
        for _receiver, counts in contact_merging.send(sender=Contact, loser=loser, survivor=survivor):
            # django-stubs types a response as str | None; a receiver of contact_merging returns its counts
            for name, count in counts.items():  # type: ignore[union-attr]
                moved[name] = moved.get(name, 0) + count
        # A subscriber row per address; the loser's subscription (if any) now points at the survivor.
        Subscriber.objects.filter(contact=loser).update(contact=survivor)
        for field in ("last_name", "phone", "job_title", "source"):
            if not getattr(survivor, field) and getattr(loser, field):
                setattr(survivor, field, getattr(loser, field))
        if survivor.company_id is None:
            survivor.company_id = loser.company_id
        if survivor.owner_id is None:
            survivor.owner_id = loser.owner_id
        extra_emails = list(survivor.other_emails)
        loser_email = loser.email
        for email in [loser.email, *loser.other_emails]:
            if email and email != survivor.email and email not in extra_emails:
                extra_emails.append(email)
        if not survivor.email and loser_email:
            survivor.email = loser_email
            extra_emails = [e for e in extra_emails if e != loser_email]
        survivor.other_emails = extra_emails
        phones = dict.fromkeys([*survivor.other_phones, loser.phone, *loser.other_phones])
        survivor.other_phones = [p for p in phones if p and p != survivor.phone]
        survivor.tags = list(dict.fromkeys([*survivor.tags, *loser.tags]))
        if loser.notes:
            survivor.notes = (survivor.notes + "\n\n" + loser.notes).strip()
        lifecycle_rank: list[str] = [Lifecycle.LEAD, Lifecycle.PROSPECT, Lifecycle.FORMER, Lifecycle.CLIENT]
        if lifecycle_rank.index(loser.lifecycle) > lifecycle_rank.index(survivor.lifecycle):
            survivor.lifecycle = loser.lifecycle
        shared = set(loser.shared_with.values_list("pk", flat=True))
        loser.delete()  # frees the e-mail address before the survivor may take it
        survivor.save()
        if shared:
            survivor.shared_with.add(*shared)
        Activity.objects.create(
            kind=ActivityKind.NOTE,
            subject=f"Merged {loser_label} into this contact",
            body=", ".join(f"{n} {k}" for k, n in moved.items()) + " moved.",
            contact=survivor,
            owner=_actor_user(actor),
            source="merge",
        )
    return survivor


def company_merge(*, actor, survivor: Company, loser: Company) -> Company:
    """Merge two companies: contacts, deals and activities move to the survivor. Atomic."""
    access.require_write(actor)
    if survivor.pk == loser.pk:
        raise ValidationError({"loser": "Choose two different companies."})
    with transaction.atomic():
        survivor = Company.objects.select_for_update().get(pk=survivor.pk)
        loser = Company.objects.select_for_update().get(pk=loser.pk)
        moved = {
            "contacts": Contact.objects.filter(company=loser).update(company=survivor),
            "deals": Deal.objects.filter(company=loser).update(company=survivor),
            "activities": Activity.objects.filter(company=loser).update(company=survivor),
        }
        for field in ("domain", "website", "phone", "industry"):
            if not getattr(survivor, field) and getattr(loser, field):
                setattr(survivor, field, getattr(loser, field))
        survivor.tags = list(dict.fromkeys([*survivor.tags, *loser.tags]))
        if loser.notes:
            survivor.notes = (survivor.notes + "\n\n" + loser.notes).strip()
        shared = set(loser.shared_with.values_list("pk", flat=True))
        name = loser.name
        loser.delete()
        survivor.save()
        if shared:
            survivor.shared_with.add(*shared)
        Activity.objects.create(
            kind=ActivityKind.NOTE,
            subject=f"Merged company {name} into this company",
            body=", ".join(f"{n} {k}" for k, n in moved.items()) + " moved.",
            company=survivor,
            owner=_actor_user(actor),
            source="merge",
        )
    return survivor


# --- imports ----------------------------------------------------------------------------------------


def import_start(*, actor, tenant, kind: str, upload) -> ImportJob:
    """Read an uploaded CSV (codex.imports.read_csv: size, type, encoding) and keep it as a pending
    job with an automatic column mapping. Raises ImportFileError for an unreadable file."""

    access.require_write(actor)
    if kind not in SPECS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(SPECS)}."})
    check_feature(tenant=tenant, feature="imports")
    parsed = engine.read_csv(upload)
    spec = SPECS[kind](actor=actor)
    return ImportJob.objects.create(
        kind=kind,
        filename=getattr(upload, "name", "")[:255],
        encoding=parsed.encoding,
        headers=parsed.headers,
        rows=parsed.rows,
        mapping=engine.auto_map(parsed.headers, spec),
        created_by=_actor_user(actor),
    )


def import_configure(*, actor, job: ImportJob, mapping: dict | None = None, duplicates: str | None = None):
    """Set the column mapping and the duplicates mode of a pending job and return its preview."""

    access.require_write(actor)
    if job.status != ImportStatus.PENDING:
        raise StateConflict({"status": "This import is finished."})
    spec = SPECS[job.kind](actor=actor)
    if mapping is not None:
        mapping = {h: (mapping.get(h) or "") for h in job.headers}
        errors = engine.validate_mapping(job.headers, mapping, spec)
        if errors:
            raise ValidationError({"mapping": [f"{k}: {v}" if k != "__all__" else v for k, v in errors.items()]})
        job.mapping = mapping
    if duplicates is not None:
        if duplicates not in engine.DuplicateMode.values:
            raise ValidationError({"duplicates": "Choose skip, update or merge."})
        job.duplicates = duplicates
    job.save(update_fields=["mapping", "duplicates"])
    errors = engine.validate_mapping(job.headers, job.mapping, spec)
    if errors:
        raise ValidationError({"mapping": [v if k == "__all__" else f"{k}: {v}" for k, v in errors.items()]})
    return engine.preview(spec, job.headers, job.rows, job.mapping, duplicates=job.duplicates)


def import_commit(*, actor, tenant, job: ImportJob) -> dict:
    """Write the whole job or nothing (codex.imports.commit). Checks the plan's contact limit for
    the rows it creates. On row errors raises ImportRejected and the job stays pending; on success
    stores the report (created/updated/merged/skipped) and marks the job committed."""

    access.require_write(actor)
    spec = SPECS[job.kind](actor=actor)

    def before_write(preview):
        if job.kind == "contacts":
            check_can_add(tenant=tenant, resource="contacts", adding=preview.counts["create"])

    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportStatus.PENDING:
            raise StateConflict({"status": "This import was already committed."})
        mapping_errors = engine.validate_mapping(job.headers, job.mapping, spec)
        if mapping_errors:
            raise ValidationError({"mapping": list(mapping_errors.values())})
        report = engine.commit(
            spec, job.headers, job.rows, job.mapping, duplicates=job.duplicates, before_write=before_write
        )
        # the new rows' search entries into the GIN trees now, not when autovacuum comes by
        search_indexes_merge(job.kind)
        event_emit(type="import.completed", data=events.import_data(job), resource=f"import:{job.pk}")
        job.status = ImportStatus.COMMITTED
        job.committed_at = timezone.now()
        job.report = report.as_dict()
        job.rows = []  # the data now lives in the CRM; do not keep a second copy
        job.save(update_fields=["status", "committed_at", "report", "rows"])
        notification_send(
            recipients=[actor],
            kind=NotificationKind.IMPORT,
            title=f"Import of {job.kind} finished",
            body=", ".join(f"{n} {what}" for what, n in job.report.items() if isinstance(n, int)),
            url=f"/crm/{job.kind}/",
            source=f"import:{job.pk}",
        )
    return job.report


def import_cancel(*, actor, job: ImportJob) -> ImportJob:
    access.require_write(actor)
    if job.status == ImportStatus.PENDING:
        job.status = ImportStatus.CANCELLED
        job.rows = []
        job.save(update_fields=["status", "rows"])
    return job
