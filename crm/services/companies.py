"""Companies: create, update (name unique per firm)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from .. import access
from ..models import Company
from .common import COMPANY_FIELDS, _clean_tags, _full_clean, _owner_for

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
