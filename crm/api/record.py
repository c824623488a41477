"""The client record: one contact with what the other apps register about them (crm.record_sources)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin

from .. import access, selectors
from .activities import ActivitySerializer
from .contacts import ContactSerializer
from .deals import DealSerializer


class ClientRecordView(IdempotentPostMixin, APIView):
    """One client: portfolios with value and returns, last activity, open deals, newsletter status,
    open tasks and the timeline."""

    @extend_schema(responses=inline_serializer("ClientRecord", {"contact": ContactSerializer()}))
    def get(self, request, pk: int):
        contact = access.contact_for_user(
            request.user, pk, queryset=access.contacts_for(request.user).select_related("company")
        )
        record = selectors.client_record(user=request.user, contact=contact, timeline_per_page=100)

        def money(v):
            return None if v is None else str(v)

        return Response(
            {
                "contact": ContactSerializer(contact).data,
                "portfolios": [
                    {
                        "id": f.portfolio.pk,
                        "name": f.portfolio.name,
                        "currency": f.currency,
                        "value": money(f.value),
                        "twr": money(f.twr),
                        "mwr": money(f.mwr),
                        "error": f.error,
                    }
                    for f in record.portfolios
                ],
                "aum": {cur: str(v) for cur, v in record.aum.items()},
                "last_activity": ActivitySerializer(record.last_activity).data if record.last_activity else None,
                "open_deals": DealSerializer(record.open_deals, many=True).data,
                "open_tasks": ActivitySerializer(record.open_tasks, many=True).data,
                "newsletter_status": record.newsletter_status,
                "timeline": [
                    {"at": i.at.isoformat(), "kind": i.kind, "title": i.title, "detail": i.detail, "url": i.url}
                    for i in record.timeline
                ],
            }
        )
