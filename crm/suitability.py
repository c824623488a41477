"""Risk and suitability on the client record: risk tolerance, objectives, time horizon, KYC status
with its review dates, and a task for the contact's owner when a KYC review falls due.

Stored on ``crm.Contact`` so that every change is in the contact's change history (decision 0802).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import access
from .models import Contact, KycStatus, Objective, RiskTolerance, TimeHorizon
from .services import task_create

SUITABILITY_FIELDS = (
    "risk_tolerance",
    "objectives",
    "time_horizon",
    "kyc_status",
    "kyc_reviewed_on",
    "kyc_review_due_on",
)


def _clean(contact: Contact, fields: dict) -> dict:
    errors: dict[str, str] = {}
    unknown = set(fields) - set(SUITABILITY_FIELDS)
    if unknown:
        raise TypeError(f"unknown suitability fields: {sorted(unknown)}")
    if fields.get("risk_tolerance", "") not in ("", *RiskTolerance.values):
        errors["risk_tolerance"] = f"One of: {', '.join(RiskTolerance.values)}."
    if fields.get("time_horizon", "") not in ("", *TimeHorizon.values):
        errors["time_horizon"] = f"One of: {', '.join(TimeHorizon.values)}."
    if "kyc_status" in fields and fields["kyc_status"] not in KycStatus.values:
        errors["kyc_status"] = f"One of: {', '.join(KycStatus.values)}."
    objectives = fields.get("objectives")
    if objectives is not None:
        bad = [o for o in objectives if o not in Objective.values]
        if bad:
            errors["objectives"] = f"Unknown: {', '.join(bad)}. One or more of: {', '.join(Objective.values)}."
        fields["objectives"] = list(dict.fromkeys(objectives))
    reviewed = fields.get("kyc_reviewed_on", contact.kyc_reviewed_on)
    due = fields.get("kyc_review_due_on", contact.kyc_review_due_on)
    if reviewed and reviewed > timezone.localdate():
        errors["kyc_reviewed_on"] = "A review cannot be in the future."
    if reviewed and due and due < reviewed:
        errors["kyc_review_due_on"] = "The next review is due after the last one."
    status = fields.get("kyc_status", contact.kyc_status)
    if status == KycStatus.VERIFIED and not reviewed:
        errors["kyc_reviewed_on"] = "A verified KYC needs the date it was reviewed."
    if errors:
        raise ValidationError(errors)
    return fields


def contact_suitability_update(*, actor, contact: Contact, **fields) -> Contact:
    """Change the suitability fields given. The caller fetched ``contact`` through crm.access for
    writing. Raises ValidationError (field dict) for bad values; then nothing is written."""
    access.require_write(actor)
    fields = _clean(contact, fields)
    with transaction.atomic():
        for name, value in fields.items():
            setattr(contact, name, value)
        contact.save(update_fields=[*fields, "updated_at"])
    return contact


def kyc_reviews_due(*, on: dt.date) -> QuerySet[Contact]:
    """Contacts of the firm whose KYC review is due on or before ``on`` (clients and prospects)."""
    return (
        Contact.objects.filter(kyc_review_due_on__lte=on, lifecycle__in=["client", "prospect"])
        .select_related("owner")
        .order_by("kyc_review_due_on", "pk")
    )


def kyc_review_tasks_open(*, on: dt.date | None = None) -> int:
    """Open a task for the owner of each contact whose KYC review is due (idempotent: one open task
    per contact and due date). Contacts without an owner are skipped. Returns the tasks opened or
    found open."""
    on = on or timezone.localdate()
    opened = 0
    for contact in kyc_reviews_due(on=on):
        if contact.owner is None:
            continue
        task_create(
            owner=contact.owner,
            title=f"KYC review due for {contact}",
            due_date=contact.kyc_review_due_on,
            contact=contact,
            body=f"The KYC review of {contact} was due on {contact.kyc_review_due_on}.",
            source=f"kyc-review:{contact.pk}:{contact.kyc_review_due_on}",
        )
        opened += 1
    return opened
