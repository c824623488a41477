"""Search across contacts, companies and deals."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin

from .. import selectors


class SearchHitSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField(source="pk")
    title = serializers.CharField()
    subtitle = serializers.CharField()
    url = serializers.CharField(
        help_text="Path of the record's page on the firm's web host (the same on the API host)."
    )
    score = serializers.FloatField()


class SearchView(IdempotentPostMixin, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ],
        responses=inline_serializer("SearchResults", {"results": SearchHitSerializer(many=True)}),
        summary="Search contacts, companies and deals (full text + typo-tolerant names)",
    )
    def get(self, request):
        if "q" not in request.query_params:
            raise ValidationError({"q": ["Give the text to search for."]})
        q = request.query_params["q"]
        raw = request.query_params.get("limit", "20")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            raise ValidationError({"limit": ["Use a whole number from 1 to 100."]})
        limit = int(raw)
        hits = selectors.crm_search(request.user, q, limit)
        return Response({"results": SearchHitSerializer(hits, many=True).data})
