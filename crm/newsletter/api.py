"""The newsletter's API: subscribers and campaigns (the firm's: advisors get 403)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from codex.api.errors import Conflict
from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite

from .. import access, selectors
from ..api.common import CrmViewSet, _tenant
from ..models import Campaign, Subscriber
from ..newsletter import services as newsletter_services


class SubscriberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subscriber
        fields = ["id", "email", "contact", "status", "source", "created_at", "confirmed_at", "unsubscribed_at"]
        read_only_fields = ["contact", "status", "created_at", "confirmed_at", "unsubscribed_at"]
        extra_kwargs: dict[str, dict[str, object]] = {"email": {"validators": []}}


# One line without control characters (Unicode Cc, Zl, Zp): what ``newsletter_services.subject_error`` checks,
# stated in the schema. DRF trims the text before it checks it (white space around it is free), and
# what is left is 1 to 200 characters that start and end with something other than white space.
_LINE_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
_LINE_EDGE = r"[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]"
SUBJECT_MAX_LENGTH = 200
ONE_LINE_PATTERN = rf"^\s*{_LINE_EDGE}(?:{_LINE_CHAR}{{0,{SUBJECT_MAX_LENGTH - 2}}}{_LINE_EDGE})?\s*$"


class CampaignSerializer(serializers.ModelSerializer):
    # No max_length: the pattern bounds the trimmed text (a maxLength would bound it before trimming).
    subject = serializers.CharField(
        validators=[
            RegexValidator(
                ONE_LINE_PATTERN, message="The subject must be one line, without line breaks or control characters."
            )
        ],
        help_text="The mail's Subject: one line, no control characters.",
    )
    report = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "subject", "body", "status", "created_at", "send_started_at", "sent_at", "report"]
        read_only_fields = ["status", "created_at", "send_started_at", "sent_at"]

    def get_report(self, obj) -> dict:
        counts = getattr(obj, "report_counts", None)
        return counts if counts is not None else {}


class SeesWholeFirm(BasePermission):
    """The newsletter (mailing list and campaigns) is the firm's: advisors get 403, as on its page.

    Owners, admins, viewers and API keys pass (viewers and read keys only read: ``CanWrite``).
    """

    message = "The newsletter is managed by the firm's owners and admins."

    def has_permission(self, request, view):
        return access.sees_whole_firm(request.user)


class SubscriberViewSet(
    IdempotentPostMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The newsletter list. Adding an address sends a confirmation link (double opt-in)."""

    serializer_class = SubscriberSerializer
    permission_classes = [IsAuthenticated, SeesWholeFirm, CanWrite]
    filterset_fields = ["status"]
    search_fields = ["email"]
    ordering_fields = ["email", "created_at", "confirmed_at"]
    ordering = ["email"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscriber.objects.none()
        return access.subscribers_for(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = newsletter_services.subscriber_add(
            actor=self.request.user,
            tenant=_tenant(self.request),
            email=serializer.validated_data["email"],
            source=serializer.validated_data.get("source") or "api",
        )

    @extend_schema(request=None, responses=SubscriberSerializer)
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request, pk=None):
        subscriber = access.subscriber_for_user(request.user, pk, write=True)
        subscriber = newsletter_services.subscriber_unsubscribe(subscriber=subscriber, actor=request.user)
        return Response(SubscriberSerializer(subscriber).data)


class CampaignViewSet(CrmViewSet):
    permission_classes = [IsAuthenticated, SeesWholeFirm, CanWrite]
    serializer_class = CampaignSerializer
    filterset_fields = ["status"]
    search_fields = ["subject"]
    ordering_fields = ["created_at", "sent_at"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return access.campaigns_for(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        campaign = self.get_object()
        campaign.report_counts = selectors.campaign_report(campaign=campaign)
        return Response(self.get_serializer(campaign).data)

    def perform_create(self, serializer):
        serializer.instance = newsletter_services.campaign_save(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        data = serializer.validated_data
        newsletter_services.campaign_save(
            actor=self.request.user,
            campaign=serializer.instance,
            subject=data.get("subject", serializer.instance.subject),
            body=data.get("body", serializer.instance.body),
        )

    def perform_destroy(self, instance):
        access.require_manager_or_key(self.request.user)
        if instance.status != "draft":
            raise Conflict("Only a draft can be deleted.", details={"status": ["Only a draft can be deleted."]})
        instance.delete()

    @extend_schema(request=None, responses={202: CampaignSerializer}, summary="Send the campaign (background)")
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        campaign = access.campaign_for_user(request.user, pk, write=True)
        campaign = newsletter_services.campaign_send(actor=request.user, tenant=_tenant(request), campaign=campaign)
        campaign.refresh_from_db()
        campaign.report_counts = selectors.campaign_report(campaign=campaign)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_202_ACCEPTED)
