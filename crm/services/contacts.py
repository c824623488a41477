"""Contacts: create, update, delete (e-mail unique per firm, the plan's contact limit)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from billing.entitlements import check_can_add
from codex.outbox.services import event_emit

from .. import access, events
from ..models import Contact
from .common import (
    CONTACT_FIELDS,
    NameTaken,
    StateConflict,
    _check_linked_visible,
    _clean_tags,
    _full_clean,
    _owner_for,
)

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
