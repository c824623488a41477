"""API of the firm itself: who am I, which firm, API keys, bearer tokens."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import IsFirmManager
from codex.api.throttles import AuthRateThrottle
from codex.security.net import client_ip
from tenants.accounts import twofactor

from .authentication import token_for_user
from .models import ApiKey, ApiScope, Tenant
from .services import api_key_create, api_key_revoke, audit_record


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    email = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    auth = serializers.ChoiceField(choices=["session", "bearer", "api_key"])


class MeView(IdempotentPostMixin, APIView):
    @extend_schema(responses=MeSerializer, summary="The caller: user or API key, and role")
    def get(self, request):
        user = request.user
        if hasattr(user, "api_key"):
            data = {"id": None, "email": user.email, "name": str(user), "role": user.role, "auth": "api_key"}
        else:
            auth = "bearer" if request.auth is not None else "session"
            data = {"id": user.pk, "email": user.email, "name": str(user), "role": user.role, "auth": auth}
        return Response(MeSerializer(data).data)


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "status", "require_2fa", "created_at"]


class TenantView(IdempotentPostMixin, APIView):
    @extend_schema(responses=TenantSerializer, summary="The firm this request is served for")
    def get(self, request):
        return Response(TenantSerializer(request.tenant).data)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiScope.choices, default=ApiScope.READ)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself. Shown once; only a hash is kept.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyListCreateView(IdempotentPostMixin, generics.ListAPIView):
    """List the firm's API keys (metadata only) or create one (owners and admins)."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated, IsFirmManager]
    ordering_fields = ["created_at", "name", "last_used_at"]
    search_fields = ["name", "prefix"]
    filterset_fields = ["scope"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiKey.objects.none()
        return ApiKey.objects.filter(tenant=self.request.tenant).order_by("-created_at")

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = api_key_create(tenant=request.tenant, created_by=request.user.email, **data.validated_data)
        body = ApiKeySerializer(key).data | {"key": raw}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(IdempotentPostMixin, APIView):
    permission_classes = [IsAuthenticated, IsFirmManager]

    @extend_schema(request=None, responses=ApiKeySerializer, summary="Revoke an API key at once")
    def post(self, request, pk: int):
        key = get_object_or_404(ApiKey.objects.select_related("tenant"), pk=pk, tenant=request.tenant)
        api_key_revoke(key=key, actor=request.user.email)
        return Response(ApiKeySerializer(key).data)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="A current code (or a recovery code) when the user has two-factor authentication.",
    )


class TokenView(IdempotentPostMixin, APIView):
    """Exchange a firm user's e-mail and password for a short-lived bearer token bound to the firm."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    def get_authenticate_header(self, request):
        # Wrong credentials are a 401 (with a challenge), not DRF's 403 for views without authenticators.
        return 'Bearer realm="api"'

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "Token",
                {
                    "access": serializers.CharField(),
                    "token_type": serializers.CharField(),
                    "expires_in": serializers.IntegerField(),
                },
            )
        },
        auth=[],
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None:
            wait = getattr(request._request, "codex_login_wait", 0)
            if wait:
                raise Throttled(wait, detail="Too many failed sign-ins for this account or address.")
            audit_record(
                action="token.failed",
                actor=data.validated_data["email"],
                tenant=request.tenant,
                ip=request.META.get("REMOTE_ADDR"),
            )

            raise AuthenticationFailed("Wrong e-mail or password.")

        if twofactor.has_two_factor(user) or request.tenant.require_2fa:
            otp = data.validated_data.get("otp") or ""
            if (
                not otp
                or twofactor.two_factor_verify(user=user, token=otp, tenant=request.tenant, ip=client_ip(request))
                is None
            ):
                raise AuthenticationFailed("A valid two-factor code is required (field otp).")
        token = token_for_user(user)
        audit_record(action="token.issued", actor=user.email, tenant=request.tenant, ip=client_ip(request))
        lifetime = int(token.lifetime.total_seconds())
        return Response({"access": str(token), "token_type": "Bearer", "expires_in": lifetime})
