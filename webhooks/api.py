"""/api/v1/webhook-endpoints/ (owners and admins) and /api/v1/webhook-events/ (the catalogue)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import IsFirmManager
from codex.outbox.catalogue import CATALOGUE

from . import selectors, services
from .serializers import (
    EVENT_PAYLOAD,
    DeliverySerializer,
    EndpointPatchSerializer,
    EndpointSerializer,
    EndpointWriteSerializer,
    EventTypeSerializer,
)


class WebhookEndpointViewSet(
    IdempotentPostMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The firm's webhook endpoints. Owners and admins only (signed in, or by bearer token)."""

    serializer_class = EndpointSerializer
    permission_classes = [IsAuthenticated, IsFirmManager]
    ordering_fields = ["created_at", "url"]
    search_fields = ["url", "description"]
    filterset_fields = ["enabled"]

    def get_queryset(self):
        return selectors.endpoints_list()

    @extend_schema(request=EndpointWriteSerializer, responses={201: EndpointSerializer}, summary="Add an endpoint")
    def create(self, request):
        data = EndpointWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(tenant=request.tenant, actor=request.user.email, **data.validated_data)
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointPatchSerializer, responses=EndpointSerializer, summary="Change an endpoint")
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = EndpointPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(tenant=request.tenant, endpoint=endpoint, **data.validated_data)
        return Response(EndpointSerializer(endpoint).data)

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance)

    @extend_schema(
        request=None,
        responses=EndpointSerializer,
        summary="New signing secret; the old one keeps signing for the grace period",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = services.endpoint_rotate_secret(endpoint=self.get_object())
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: DeliverySerializer}, summary="Send a webhook.test event")
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, pk=None):
        delivery = services.endpoint_send_test(tenant=request.tenant, endpoint=self.get_object())
        delivery = selectors.deliveries_of(endpoint=delivery.endpoint).get(pk=delivery.pk)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DeliverySerializer(many=True), summary="The delivery log, newest first")
    @action(detail=True, methods=["get"], filterset_fields=[], search_fields=[], ordering_fields=[])
    def deliveries(self, request, pk=None):
        page = self.paginate_queryset(selectors.deliveries_of(endpoint=self.get_object()))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


class DeliveryReplayView(IdempotentPostMixin, APIView):
    permission_classes = [IsAuthenticated, IsFirmManager]

    @extend_schema(request=None, responses={202: DeliverySerializer}, summary="Send a delivery again now")
    def post(self, request, pk: int):
        delivery = services.delivery_replay(delivery=selectors.delivery_get(pk=pk))
        delivery = selectors.deliveries_of(endpoint=delivery.endpoint).get(pk=delivery.pk)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventTypeListView(generics.GenericAPIView):
    """The event catalogue: every type an endpoint can subscribe to (docs/webhooks.md)."""

    serializer_class = EventTypeSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(responses=EventTypeSerializer(many=True), summary="The event catalogue")
    def get(self, request):
        rows = [
            {"type": e.name, "description": e.description, "reserved": e.reserved, "example": _body(e.name)}
            for e in CATALOGUE.values()
        ]
        return Response(EventTypeSerializer(rows, many=True).data)


def _body(name: str) -> dict:
    return {"type": name, "timestamp": "2026-12-07T10:00:00+00:00", "data": CATALOGUE[name].example}


class EventExampleView(APIView):
    """An example body of one event type, as receivers get it (signed the same way)."""

    @extend_schema(
        parameters=[OpenApiParameter("type", str, OpenApiParameter.PATH, enum=sorted(CATALOGUE))],
        responses=EVENT_PAYLOAD,
        examples=[OpenApiExample(name, value=_body(name), response_only=True) for name in CATALOGUE],
        summary="Example payload of an event type (the schema of each type)",
    )
    def get(self, request, type: str):
        if type not in CATALOGUE:
            raise Http404
        return Response(_body(type))
