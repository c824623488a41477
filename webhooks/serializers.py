"""API shapes of webhooks: endpoints, deliveries with their attempt log, the event catalogue."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from codex.outbox.catalogue import CATALOGUE, SUBSCRIBABLE

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointSerializer(serializers.ModelSerializer):
    # Sealed at rest; the model's property opens it (decision 0930).
    secret = serializers.CharField(
        read_only=True, help_text="Signing secret (whsec_...): verify webhook-signature with it."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "secret",
            "previous_secret_expires_at",
            "consecutive_failures",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointWriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, help_text="HTTPS URL on a public address.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE), allow_empty=False, max_length=len(SUBSCRIBABLE)
    )
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointPatchSerializer(EndpointWriteSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
        self.fields["description"].default = serializers.empty
        self.fields["enabled"].default = serializers.empty


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "request_headers", "status_code", "latency_ms", "error", "response_body"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.message_id", help_text="The webhook-id header.")
    event_type = serializers.CharField(source="event.type")
    payload = serializers.JSONField(source="event.envelope", help_text="The body that was sent.")
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_latency_ms",
            "last_error",
            "created_at",
            "finished_at",
            "payload",
            "attempt_log",
        ]
        read_only_fields = fields


class EventTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    reserved = serializers.BooleanField(help_text="Catalogued, not emitted yet.")
    example = serializers.JSONField(help_text="An example body (the type's schema: WebhookEvent_<type>).")


def _field_for(value):
    if isinstance(value, bool):
        return serializers.BooleanField()
    if isinstance(value, int):
        return serializers.IntegerField(allow_null=True)
    if value is None:
        return serializers.IntegerField(allow_null=True)
    return serializers.CharField(allow_null=True)


def _component_name(name: str) -> str:
    return "WebhookEvent" + "".join(part.capitalize() for part in name.replace("_", ".").split("."))


def _payload_serializer(name: str) -> type[serializers.Serializer]:
    """The body of one event type: ``{"type", "timestamp", "data"}`` with ``data`` typed from its
    catalogue example."""
    example = CATALOGUE[name].example
    data = type(
        _component_name(name) + "Data",
        (serializers.Serializer,),
        {key: _field_for(value) for key, value in example.items()},
    )
    return type(
        _component_name(name),
        (serializers.Serializer,),
        {
            "type": serializers.ChoiceField(choices=[name]),
            "timestamp": serializers.DateTimeField(),
            "data": data(),
        },
    )


EVENT_PAYLOAD = PolymorphicProxySerializer(
    component_name="WebhookEventPayload",
    serializers={name: _payload_serializer(name) for name in CATALOGUE},
    resource_type_field_name="type",
)
