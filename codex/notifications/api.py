"""/api/v1/notifications/: the caller's own notices (members signed in or by bearer token; an API
key has no member, so it sees none), the unread count, mark read, and the live-stream handshake."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from codex.api.idempotency import IdempotentPostMixin

from . import selectors, services
from .live import stream_url_for
from .models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    unread = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "kind_label", "title", "body", "url", "created_at", "read_at", "unread"]
        read_only_fields = fields


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string of digits, not a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class LiveQuerySerializer(serializers.Serializer):
    """The polling call's query: ``after``, the newest notice id the page has (ids are positive
    bigints, so the schema states the range the database can compare)."""

    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**63 - 1,
        help_text="Only notices with a greater id (the newest the page has).",
    )


class NotificationMarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1),
        required=False,
        max_length=1000,
        help_text="Notification ids to mark read; leave out to mark all.",
    )


LIVE_RESPONSE = inline_serializer(
    "NotificationsLive",
    {
        "unread": serializers.IntegerField(),
        "items": NotificationSerializer(many=True),
        "stream_url": serializers.CharField(help_text="Open with EventSource; events: ready, notification, "
                                            "notification.read, figures, expired."),
        "expires_in": serializers.IntegerField(help_text="Seconds the stream's token is valid."),
        "poll_seconds": serializers.IntegerField(help_text="How often to poll when no stream can be held."),
    },
)  # fmt: skip


class NotificationViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's notices, newest first. ``?unread=true`` for unread only."""

    serializer_class = NotificationSerializer
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    search_fields = ["title", "body"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        unread = self.request.query_params.get("unread", "").lower() in ("1", "true")
        return selectors.notifications_for(user=self.request.user, unread_only=unread)

    @extend_schema(parameters=[OpenApiParameter("unread", bool, description="Only unread notices.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=None, responses=inline_serializer("NotificationUnread", {"unread": serializers.IntegerField()})
    )
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": selectors.notifications_unread_count(user=request.user)})

    @extend_schema(
        request=NotificationMarkReadSerializer,
        responses=inline_serializer("NotificationsMarked", {"marked": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="mark-read")
    def mark_read(self, request):
        """Mark the caller's notices read: those in ``ids``, or all without ``ids``."""
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"ids": ['Send a JSON object, e.g. {"ids": [1, 2]}.']})
        body = NotificationMarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(user=request.user, ids=body.validated_data.get("ids"))
        return Response({"marked": marked})

    @extend_schema(
        parameters=[LiveQuerySerializer],
        request=None,
        responses=LIVE_RESPONSE,
    )
    @action(detail=False, methods=["get"], url_path="live")
    def live(self, request):
        """The polling fallback and the stream handshake in one: the unread count, up to 20 notices
        newer than ``after``, and a stream URL with a fresh token (empty for an API key)."""
        query = LiveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = selectors.notifications_for(user=request.user, after_id=query.validated_data.get("after"))[:20]
        return Response(
            {
                "unread": selectors.notifications_unread_count(user=request.user),
                "items": NotificationSerializer(items, many=True).data,
                "stream_url": stream_url_for(request.user),
                "expires_in": settings.LIVE_TOKEN_MAX_AGE,
                "poll_seconds": settings.LIVE_POLL_SECONDS,
            }
        )
