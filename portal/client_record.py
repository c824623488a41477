"""What the document vault adds to a client's record (crm.record_sources): the client's documents
on the timeline, under the "Documents" chip. Registered in ``PortalConfig.ready``."""

from __future__ import annotations

from crm.record_sources import TimelineItem
from tenants.links import firm_path

from .models import Document


def client_document_items(*, user, contact, limit: int) -> list[TimelineItem]:
    """The latest ``limit`` documents of the client, newest first. One query. The caller has the
    contact from ``crm.access.contact_for_user``: staff who see the client see its vault."""
    return [
        TimelineItem(
            at=d.created_at,
            kind="document",
            title=f"{d.get_kind_display()}: {d.title}",
            detail=f"{d.filename}, {d.get_visibility_display().lower()}",
            url=firm_path("portal:document", args=[d.pk]),
            category="documents",
        )
        for d in Document.objects.filter(contact=contact).order_by("-created_at", "-id")[:limit]
    ]
