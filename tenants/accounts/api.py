"""API for people's security: the firm's audit log (owners) and revoking one's bearer tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin
from codex.security.net import client_ip
from tenants.models import AuditEvent
from tenants.services import audit_record

from . import services
from .models import Role
from .selectors import audit_events_for_firm


class IsFirmOwner(BasePermission):
    """The firm's owners (signed-in users; never API keys or support sessions)."""

    message = "Only the firm's owners may see the audit log."

    def has_permission(self, request, view):
        user = request.user
        return bool(getattr(user, "pk", None)) and getattr(user, "role", None) == Role.OWNER


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "action", "actor", "target", "ip", "details"]
        read_only_fields = fields


class AuditEventListView(IdempotentPostMixin, generics.ListAPIView):
    """The firm's audit log, newest first. Read-only: there is no way to change or delete events."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, IsFirmOwner]
    filterset_fields = ["action", "actor"]
    search_fields = ["action", "actor", "target"]
    ordering_fields = ["created_at", "action"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return audit_events_for_firm(tenant=self.request.tenant)


class TokenRevokeView(IdempotentPostMixin, APIView):
    """End every bearer token (and web session) of the calling user at once."""

    @extend_schema(
        request=None,
        responses={200: inline_serializer("TokensRevoked", {"revoked": serializers.BooleanField()})},
        summary="Revoke all of my bearer tokens",
    )
    def post(self, request):
        user = request.user
        if not getattr(user, "pk", None):
            raise PermissionDenied("API keys have no tokens; revoke the key itself.")
        services.user_sign_out_everywhere(user=user)
        audit_record(action="token.revoked", actor=user.email, tenant=request.tenant, ip=client_ip(request))
        return Response({"revoked": True})
