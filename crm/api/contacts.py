"""Contacts (with merge)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from codex.api.filters import StrictFilterBackend, StrictOrderingFilter

from .. import access, exports, selectors, services
from ..models import Company, Contact
from .common import CrmViewSet, MemberField, MergeSerializer, _tenant


class ContactSerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)
    company = serializers.PrimaryKeyRelatedField(queryset=Company.objects.all(), required=False, allow_null=True)
    name = serializers.CharField(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
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
            "shared_with",
            "tags",
            "source",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness is the service's job (case-insensitive, firm-wide).
        validators: list = []
        extra_kwargs: dict[str, dict[str, object]] = {"email": {"validators": []}}


class ContactFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Contact
        fields = ["lifecycle", "owner", "company", "source"]

    def filter_tag(self, qs, name, value):
        return qs.filter(tags__contains=[value.lower()])


class ContactSearchFilter(filters.SearchFilter):
    """DRF's ``search`` parameter and its schema; the match is ``selectors.contacts_matching``:
    every term in the name, e-mail, phone or company name, answered by trigram indexes."""

    def filter_queryset(self, request, queryset, view):
        terms = self.get_search_terms(request)
        return selectors.contacts_matching(queryset, terms) if terms else queryset


class ContactViewSet(CrmViewSet):
    """Contacts in the caller's book. Creation checks the plan's contact limit (402)."""

    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    filter_backends = [StrictFilterBackend, ContactSearchFilter, StrictOrderingFilter]
    search_fields = ["first_name", "last_name", "email", "phone", "company__name"]
    ordering_fields = ["last_name", "first_name", "email", "created_at", "updated_at", "lifecycle"]
    ordering = ["last_name", "first_name", "pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Contact.objects.none()
        return access.contacts_for(self.request.user).prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.contact_create(
            actor=self.request.user, tenant=_tenant(self.request), shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer)
        services.contact_update(
            actor=self.request.user, contact=serializer.instance, shared_with=extra.get("shared_with"), **data
        )

    def perform_destroy(self, instance):
        services.contact_delete(actor=self.request.user, contact=instance)

    @extend_schema(request=MergeSerializer, responses=ContactSerializer, summary="Merge another contact into this one")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        survivor = access.contact_for_user(request.user, pk, write=True)
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        loser = access.contact_for_user(request.user, data.validated_data["loser"], write=True)
        survivor = services.contact_merge(actor=request.user, survivor=survivor, loser=loser)
        return Response(ContactSerializer(survivor).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the contacts (filtered) as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        qs = self.filter_queryset(self.get_queryset())
        return exports.csv_response("contacts", exports.contact_rows(qs))
