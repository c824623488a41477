"""``GET, PATCH /api/v1/contacts/{id}/suitability/``: risk tolerance, objectives, time horizon and
KYC status with its review dates (crm.suitability)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin

from . import access
from .models import Contact, KycStatus, Objective, RiskTolerance, TimeHorizon
from .suitability import contact_suitability_update


class SuitabilitySerializer(serializers.ModelSerializer):
    risk_tolerance = serializers.ChoiceField(choices=RiskTolerance.choices, allow_blank=True, required=False)
    objectives = serializers.ListField(child=serializers.ChoiceField(choices=Objective.choices), required=False)
    time_horizon = serializers.ChoiceField(choices=TimeHorizon.choices, allow_blank=True, required=False)
    kyc_status = serializers.ChoiceField(choices=KycStatus.choices, required=False)

    class Meta:
        model = Contact
        fields = ["risk_tolerance", "objectives", "time_horizon", "kyc_status", "kyc_reviewed_on", "kyc_review_due_on"]


class SuitabilityView(IdempotentPostMixin, APIView):
    @extend_schema(responses=SuitabilitySerializer, summary="A contact's risk profile, objectives and KYC")
    def get(self, request, pk: int):
        contact = access.contact_for_user(request.user, pk)
        return Response(SuitabilitySerializer(contact).data)

    @extend_schema(request=SuitabilitySerializer, responses=SuitabilitySerializer, summary="Change them")
    def patch(self, request, pk: int):
        contact = access.contact_for_user(request.user, pk, write=True)
        data = SuitabilitySerializer(contact, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        contact = contact_suitability_update(actor=request.user, contact=contact, **data.validated_data)
        return Response(SuitabilitySerializer(contact).data)
