"""Companies (with merge)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import access, exports, services
from ..models import Company
from .common import CrmViewSet, MemberField, MergeSerializer


class CompanySerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)

    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "domain",
            "website",
            "phone",
            "industry",
            "owner",
            "shared_with",
            "tags",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class CompanyViewSet(CrmViewSet):
    serializer_class = CompanySerializer
    filterset_fields = ["owner", "industry"]
    search_fields = ["name", "domain", "industry"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name", "pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Company.objects.none()
        return access.companies_for(self.request.user).prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.company_create(
            actor=self.request.user, shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer)
        services.company_update(
            actor=self.request.user, company=serializer.instance, shared_with=extra.get("shared_with"), **data
        )

    @extend_schema(request=MergeSerializer, responses=CompanySerializer, summary="Merge another company into this one")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        survivor = access.company_for_user(request.user, pk, write=True)
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        loser = access.company_for_user(request.user, data.validated_data["loser"], write=True)
        survivor = services.company_merge(actor=request.user, survivor=survivor, loser=loser)
        return Response(CompanySerializer(survivor).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the companies as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        return exports.csv_response("companies", exports.company_rows(self.filter_queryset(self.get_queryset())))
