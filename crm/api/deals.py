"""Deals (with moves between stages) and the pipeline's stages."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from codex.api.fields import CurrencyField
from codex.api.filters import StrictFilterBackend, StrictOrderingFilter

from .. import access, exports, selectors, services
from ..models import Company, Contact, Deal, PipelineStage
from .common import CrmViewSet, MemberField


class PipelineStageSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineStage
        fields = ["id", "name", "position", "probability", "kind", "is_active"]


class DealSerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    company = serializers.PrimaryKeyRelatedField(queryset=Company.objects.all(), required=False, allow_null=True)
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects.filter(is_active=True), required=False)
    stage_name = serializers.CharField(source="stage.name", read_only=True)
    weighted_amount = serializers.DecimalField(max_digits=18, decimal_places=2, read_only=True)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=0, required=False)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    currency = CurrencyField(required=False)

    class Meta:
        model = Deal
        fields = [
            "id",
            "title",
            "contact",
            "company",
            "stage",
            "stage_name",
            "amount",
            "currency",
            "probability",
            "weighted_amount",
            "expected_close",
            "owner",
            "shared_with",
            "status",
            "closed_at",
            "close_reason",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "closed_at", "close_reason", "created_at", "updated_at"]


class DealMoveSerializer(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects.filter(is_active=True))
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class DealFilter(django_filters.FilterSet):
    expected_close_before = django_filters.DateFilter(field_name="expected_close", lookup_expr="lte")
    expected_close_after = django_filters.DateFilter(field_name="expected_close", lookup_expr="gte")

    class Meta:
        model = Deal
        fields = ["status", "stage", "owner", "contact", "company", "currency"]


class DealSearchFilter(filters.SearchFilter):
    """DRF's ``search`` parameter and its schema; the match is ``selectors.deals_matching``: every
    term in the title, the contact's name or the company's name, answered by trigram indexes."""

    def filter_queryset(self, request, queryset, view):
        terms = self.get_search_terms(request)
        return selectors.deals_matching(queryset, terms) if terms else queryset


class DealViewSet(CrmViewSet):
    serializer_class = DealSerializer
    filterset_class = DealFilter
    filter_backends = [StrictFilterBackend, DealSearchFilter, StrictOrderingFilter]
    search_fields = ["title", "contact__first_name", "contact__last_name", "company__name"]
    ordering_fields = ["created_at", "amount", "expected_close", "probability", "title"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Deal.objects.none()
        return access.deals_for(self.request.user).select_related("stage").prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.deal_create(
            actor=self.request.user, shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer, drop=("shared_with", "stage"))
        deal = serializer.instance
        if "stage" in extra:
            deal = services.deal_move(actor=self.request.user, deal=deal, stage=extra["stage"])
        serializer.instance = services.deal_update(
            actor=self.request.user, deal=deal, shared_with=extra.get("shared_with"), **data
        )

    @extend_schema(request=DealMoveSerializer, responses=DealSerializer, summary="Move a deal to another stage")
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        deal = access.deal_for_user(request.user, pk, write=True)
        data = DealMoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal = services.deal_move(actor=request.user, deal=deal, **data.validated_data)
        deal = self.get_queryset().get(pk=deal.pk)
        return Response(DealSerializer(deal).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the deals as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        return exports.csv_response("deals", exports.deal_rows(self.filter_queryset(self.get_queryset())))


class PipelineStageViewSet(CrmViewSet):
    """The firm's pipeline stages: everyone reads; owners, admins and write keys change them."""

    serializer_class = PipelineStageSerializer
    ordering_fields = ["position"]
    ordering = ["position", "pk"]
    filterset_fields = ["kind", "is_active"]
    search_fields = ["name"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PipelineStage.objects.none()
        services.pipeline_stages_ensure()
        return PipelineStage.objects.all()

    def perform_create(self, serializer):
        serializer.instance = services.pipeline_stage_save(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        services.pipeline_stage_save(actor=self.request.user, stage=serializer.instance, **serializer.validated_data)
