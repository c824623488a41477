"""Alerts API: rules (CRUD by the book rule) and events (read, with per-user unread state)."""

from __future__ import annotations

import re

import django_filters
from django.db.models import Exists, OuterRef
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite
from portfolios.access import portfolios_visible_to
from portfolios.market.models import Instrument

from . import selectors, services
from .models import PERCENT_KINDS, AlertEvent, AlertNotification, AlertRule, RuleKind


class AlertRuleSerializer(serializers.ModelSerializer):
    instrument_symbol = serializers.CharField(source="instrument.symbol", read_only=True, default=None, allow_null=True)
    portfolio_name = serializers.CharField(source="portfolio.name", read_only=True, default=None, allow_null=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None, allow_null=True)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "kind",
            "instrument",
            "instrument_symbol",
            "portfolio",
            "portfolio_name",
            "threshold",
            "note",
            "active",
            "armed",
            "last_value",
            "last_observed_on",
            "last_evaluated_at",
            "last_fired_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


# What the rule accepts as a threshold (``services._threshold`` and the model's 6 decimal places),
# as text: above zero, at most 14 digits before the point and 6 after it; a percentage at most 100.
# The schema and the serializer use the same patterns, so the API refuses exactly what its schema
# calls invalid (decision 0503).
_NONZERO_FRACTION = (
    r"\.(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9])"
)
THRESHOLD_PATTERN = rf"^0*(?:[1-9][0-9]{{0,13}}(?:\.[0-9]{{0,6}})?|{_NONZERO_FRACTION})$"
PERCENT_PATTERN = rf"^0*(?:[1-9][0-9]?(?:\.[0-9]{{0,6}})?|100(?:\.0{{0,6}})?|{_NONZERO_FRACTION})$"


def _rule_shape(kinds, target: str, other: str, pattern: str) -> dict:
    return {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": sorted(str(kind.value) for kind in kinds)},
            target: {"type": "integer"},
            other: {"nullable": True, "enum": [None]},  # absent or null
            "threshold": {"type": "string", "maxLength": 40, "pattern": pattern},
            "note": {"type": "string", "maxLength": 200},
            "active": {"type": "boolean", "default": True},
        },
        "required": ["kind", target, "threshold"],
    }


ALERT_RULE_CREATE_SCHEMA = {
    "oneOf": [
        _rule_shape({RuleKind.PRICE_ABOVE, RuleKind.PRICE_BELOW}, "instrument", "portfolio", THRESHOLD_PATTERN),
        _rule_shape({RuleKind.DAILY_MOVE_PCT}, "instrument", "portfolio", PERCENT_PATTERN),
        _rule_shape({RuleKind.PORTFOLIO_DRAWDOWN_PCT}, "portfolio", "instrument", PERCENT_PATTERN),
    ],
    "description": "Price alerts watch an instrument (threshold a price above zero); a daily move "
    "watches an instrument and a drawdown a portfolio of the caller's book (threshold a "
    "percentage above zero, at most 100).",
}


class AlertRuleCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    instrument = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all(), required=False, allow_null=True)
    portfolio = serializers.IntegerField(required=False, allow_null=True)
    threshold = serializers.CharField(max_length=40, trim_whitespace=False)  # " 5" is not the pattern
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)

    def validate_portfolio(self, value):
        if value is None:
            return None
        portfolio = portfolios_visible_to(self.context["request"].user).filter(pk=value).first()
        if portfolio is None:
            raise serializers.ValidationError("Choose one of the portfolios in your book.")
        return portfolio

    def validate(self, attrs):
        pattern = PERCENT_PATTERN if attrs.get("kind") in PERCENT_KINDS else THRESHOLD_PATTERN
        if not re.fullmatch(pattern, attrs.get("threshold", "")):
            raise serializers.ValidationError(
                {"threshold": "Enter a number above zero (a percentage at most 100), with at most 6 decimals."}
            )
        return attrs


class AlertRuleUpdateSerializer(serializers.Serializer):
    # The schema states the pattern of any rule's threshold; a percentage rule (daily move,
    # drawdown) also refuses more than 100, naming the field (the rule's kind is not in the body).
    threshold = serializers.RegexField(
        THRESHOLD_PATTERN,
        max_length=40,
        required=False,
        trim_whitespace=False,
        error_messages={"invalid": "Enter a number above zero with at most 6 decimals."},
        help_text="Above zero, at most 6 decimals; for a daily move or drawdown rule at most 100.",
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class AlertEventSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="rule.kind", read_only=True)
    unread = serializers.BooleanField(read_only=True)

    class Meta:
        model = AlertEvent
        fields = ["id", "rule", "kind", "fired_at", "observed_on", "value", "message", "unread"]


class AlertRuleFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=RuleKind.choices)

    class Meta:
        model = AlertRule
        fields = ["kind", "active", "armed", "instrument", "portfolio"]


class AlertEventFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(field_name="rule__kind", choices=RuleKind.choices)
    since = django_filters.IsoDateTimeFilter(field_name="fired_at", lookup_expr="gte")
    unread = django_filters.BooleanFilter()

    class Meta:
        model = AlertEvent
        fields = ["rule", "kind", "since", "unread"]


class AlertRuleViewSet(
    IdempotentPostMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Alert rules the caller may see. Creating needs the alerts feature in the firm's plan (402)."""

    serializer_class = AlertRuleSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_class = AlertRuleFilter
    search_fields = ["note", "instrument__symbol", "instrument__name", "portfolio__name"]
    ordering_fields = ["created_at", "kind", "threshold", "last_fired_at"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return selectors.rules_visible_to(self.request.user)

    def get_object(self):
        write = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return selectors.rule_for_user(self.request.user, self.kwargs["pk"], write=write)

    @extend_schema(request={"application/json": ALERT_RULE_CREATE_SCHEMA}, responses={201: AlertRuleSerializer})
    def create(self, request, *args, **kwargs):
        data = AlertRuleCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        rule = services.alert_rule_create(actor=request.user, tenant=request.tenant, **data.validated_data)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AlertRuleUpdateSerializer, responses=AlertRuleSerializer)
    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        data = AlertRuleUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = services.alert_rule_update(actor=request.user, rule=rule, **data.validated_data)
        return Response(AlertRuleSerializer(rule).data)

    def perform_destroy(self, instance):
        services.alert_rule_delete(actor=self.request.user, rule=instance)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string of digits, not a boolean (DRF's IntegerField takes both)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictIntegerField(), required=False, help_text="Event ids to mark read; leave out to mark all."
    )


class AlertEventViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """Firings of the rules the caller may see, newest first; ``unread`` is the caller's own state."""

    serializer_class = AlertEventSerializer
    filterset_class = AlertEventFilter
    search_fields = ["message"]
    ordering_fields = ["fired_at", "observed_on"]
    ordering = ["-fired_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertEvent.objects.none()
        unread = AlertNotification.objects.filter(
            event_id=OuterRef("pk"), recipient_id=self.request.user.pk, read_at__isnull=True
        )
        return selectors.events_visible_to(self.request.user).annotate(unread=Exists(unread))

    @extend_schema(request=None, responses=inline_serializer("UnreadCount", {"unread": serializers.IntegerField()}))
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None)
    def unread_count(self, request):
        return Response({"unread": selectors.unread_count(request.user)})

    @extend_schema(
        request=MarkReadSerializer,
        responses=inline_serializer("MarkedRead", {"marked": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="mark-read", filterset_class=None)
    def mark_read(self, request):
        """Mark the caller's notifications read: the events in ``ids``, or all without ``ids``."""
        # No body (or no ``ids``) marks all; ``ids`` present must be a list of integers (null, a
        # string or a boolean is a 400, not "all": the schema says so and API fuzzing checks it).
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"ids": ['Send a JSON object, e.g. {"ids": [1, 2]}.']})
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = body.validated_data.get("ids")
        qs = AlertNotification.objects.filter(recipient_id=request.user.pk, read_at__isnull=True)
        notification_ids = None if ids is None else list(qs.filter(event_id__in=ids).values_list("pk", flat=True))
        marked = services.alert_notifications_mark_read(user=request.user, ids=notification_ids)
        return Response({"marked": marked})
