"""What fees contribute to a client's record (crm.record_sources): the products the client
subscribes to and their fee invoices, as timeline items; a contact merge moves fee rows."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from crm.record_sources import TimelineItem

from . import selectors
from .models import BillingGroup, FeeInvoice, FeeStatement


def _at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def client_fee_items(*, user, contact, limit: int) -> list[TimelineItem]:
    """The client's subscriptions (product, from, billing) and fee invoices, newest first."""
    if not selectors.groups_for(user).filter(client=contact).exists():
        return []
    items = [
        TimelineItem(
            at=_at(sub.starts_on),
            kind="product",
            title=f"Subscribed to {sub.product.name}",
            detail=f"{sub.get_frequency_display()}, {sub.get_timing_display()}, {sub.get_collection_display()}"
            + (f"; ends {sub.ends_on.isoformat()}" if sub.ends_on else ""),
            url="/fees/",
        )
        for sub in selectors.products_of_client(contact=contact)[:limit]
    ]
    invoices = FeeInvoice.objects.filter(client=contact).order_by("-issued_on", "-id")[:limit]
    items += [
        TimelineItem(
            at=_at(inv.issued_on),
            kind="fee_invoice",
            title=f"{inv.get_kind_display()} {inv.number}: {inv.currency} {inv.total}",
            detail=f"{inv.period_start.isoformat()} to {inv.period_end.isoformat()}, {inv.get_status_display()}",
            url=f"/api/v1/fee-invoices/{inv.pk}/",
        )
        for inv in invoices
    ]
    return sorted(items, key=lambda i: i.at, reverse=True)[:limit]


def fees_follow_merged_contact(sender, *, loser, survivor, **kwargs) -> dict[str, int]:
    """Receiver of ``crm.record_sources.contact_merging``: the loser's billing groups, invoices
    and statements become the survivor's, inside the merge's transaction."""
    return {
        "billing_groups": BillingGroup.objects.filter(client=loser).update(client=survivor),
        "fee_invoices": FeeInvoice.objects.filter(client=loser).update(client=survivor),
        "fee_statements": FeeStatement.objects.filter(client=loser).update(client=survivor),
    }
