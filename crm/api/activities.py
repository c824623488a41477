"""Activities and tasks."""

from __future__ import annotations

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from codex.api.idempotency import IdempotentPostMixin

from .. import access, selectors, services
from ..models import Activity, ActivityKind, Company, Contact, Deal
from .common import CrmViewSet, MemberField


class ActivitySerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    company = serializers.PrimaryKeyRelatedField(queryset=Company.objects.all(), required=False, allow_null=True)
    deal = serializers.PrimaryKeyRelatedField(queryset=Deal.objects.all(), required=False, allow_null=True)
    is_done = serializers.BooleanField(read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "kind",
            "subject",
            "body",
            "contact",
            "company",
            "deal",
            "owner",
            "occurred_at",
            "due_date",
            "completed_at",
            "is_done",
            "source",
            "created_at",
        ]
        read_only_fields = ["completed_at", "source", "created_at"]
        extra_kwargs = {"kind": {"required": True}}  # the service needs it (found by API fuzzing)


class TaskCompleteSerializer(serializers.Serializer):
    done = serializers.BooleanField(default=True, help_text="true marks the task done, false opens it again.")


class ActivityFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="completed_at", lookup_expr="isnull")

    class Meta:
        model = Activity
        fields = ["kind", "contact", "company", "deal", "owner"]


class ActivityViewSet(CrmViewSet):
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    search_fields = ["subject", "body"]
    ordering_fields = ["occurred_at", "due_date", "created_at"]
    ordering = ["-occurred_at", "-pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Activity.objects.none()
        return access.activities_for(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.activity_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("owner", None)
        services.activity_update(actor=self.request.user, activity=serializer.instance, **data)

    def perform_destroy(self, instance):
        access.require_write(self.request.user)
        instance.delete()

    @extend_schema(
        request=TaskCompleteSerializer, responses=ActivitySerializer, summary="Mark a task done (or not done)"
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        task = access.activity_for_user(request.user, pk, write=True)
        data = TaskCompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_complete(actor=request.user, task=task, done=data.validated_data["done"])
        return Response(ActivitySerializer(task).data)


class TaskViewSet(IdempotentPostMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Tasks. ``?mine=1`` only the caller's; ``?due=today|overdue|due`` open tasks by due date."""

    serializer_class = ActivitySerializer
    ordering_fields = ["due_date", "created_at"]
    search_fields = ["subject", "body"]
    filterset_fields = ["contact", "deal", "owner"]

    @extend_schema(
        parameters=[
            OpenApiParameter("mine", bool, description="Only tasks owned by the caller"),
            OpenApiParameter("due", str, enum=["today", "overdue", "due", "open"]),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Activity.objects.none()
        params = self.request.query_params
        due = params.get("due")
        if due is not None and due not in {"today", "overdue", "due", "open"}:
            raise ValidationError({"due": "Use today, overdue, due or open."})
        mine = params.get("mine")
        if mine is not None and mine not in ("true", "false"):
            raise ValidationError({"mine": "Use true or false."})
        if mine == "true":
            return selectors.tasks_due_for(self.request.user, due=due or "open")
        qs = access.activities_for(self.request.user).filter(kind=ActivityKind.TASK)
        if due:
            today = timezone.localdate()
            qs = qs.filter(completed_at__isnull=True)
            qs = {
                "today": qs.filter(due_date=today),
                "overdue": qs.filter(due_date__lt=today),
                "due": qs.filter(due_date__lte=today),
                "open": qs,
            }[due]
        return qs.order_by("due_date", "pk")
