"""What the CRM's writes share: field lists, default stages, the book and linking helpers, conflict errors."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from tenants.accounts.models import User

from .. import access
from ..models import StageKind

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
