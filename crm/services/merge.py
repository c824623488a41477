"""Merging two contacts or two companies into one (portfolios follow through crm.record_sources)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from .. import access
from ..models import Activity, ActivityKind, Company, Contact, Deal, Lifecycle, Subscriber
from ..record_sources import contact_merging
from .common import _actor_user

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
