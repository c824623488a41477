"""The firm's billing API: subscription, usage, invoices (read) and plan change with preview.

Every member of the firm (and any API key) may read; changing plan or cancelling needs an owner or
admin signed in (session or bearer token): API keys cannot move money. Operators use the admin.
"""

from __future__ import annotations

from django.conf import settings
from django_tenants.utils import schema_context
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin

from . import selectors, services
from .models import BillingInterval, Invoice, InvoiceLine, Payment, Plan, Subscription


class ReadOrManager(BasePermission):
    message = "Only the firm's owners and admins may change the subscription."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or bool(getattr(request.user, "is_manager", False))


def _actor(request) -> str:
    return getattr(request.user, "email", "") or str(request.user)


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "price_month",
            "price_year",
            "currency",
            "seat_price",
            "included_seats",
            "max_seats",
            "max_portfolios",
            "max_contacts",
            "max_api_calls_month",
            "api_overage_price_per_1000",
            "features",
        ]


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanSerializer()
    effective_plan = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "plan",
            "effective_plan",
            "status",
            "interval",
            "trial_ends_at",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "canceled_at",
            "credit_balance",
        ]

    def get_effective_plan(self, obj) -> str:
        plan = selectors.effective_plan(obj)
        return plan.code if plan else ""


class SubscriptionView(IdempotentPostMixin, APIView):
    @extend_schema(responses=SubscriptionSerializer, summary="The firm's subscription")
    def get(self, request):
        sub = selectors.subscription_of(request.tenant)
        if sub is None:
            return Response({"error": {"code": "not_found", "message": "No subscription.", "details": {}}}, 404)
        return Response(SubscriptionSerializer(sub).data)


class MeterSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label: DRF allows it, the stubs see Field.label
    used = serializers.IntegerField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    percent = serializers.IntegerField(allow_null=True)
    over = serializers.BooleanField()
    note = serializers.CharField()


class UsageView(IdempotentPostMixin, APIView):
    @extend_schema(
        responses=inline_serializer("UsageMeters", {"results": MeterSerializer(many=True)}),
        summary="Usage meters against the plan's limits",
    )
    def get(self, request):
        meters = selectors.usage_meters(request.tenant)
        return Response({"results": MeterSerializer(meters, many=True).data})


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["kind", "description", "quantity", "unit_amount", "amount"]


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["kind", "provider", "amount", "currency", "created_at"]


class InvoiceSerializer(serializers.ModelSerializer):
    amount_due = serializers.DecimalField(max_digits=14, decimal_places=4, read_only=True)
    plan = serializers.CharField(source="plan.code")
    html_url = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "plan",
            "currency",
            "period_start",
            "period_end",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "amount_paid",
            "amount_refunded",
            "amount_due",
            "finalized_at",
            "due_at",
            "paid_at",
            "html_url",
        ]

    def get_html_url(self, obj) -> str:
        return f"/billing/invoices/{obj.pk}/"


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True)
    payments = PaymentSerializer(many=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "bill_to", "lines", "payments"]


class InvoiceListView(IdempotentPostMixin, generics.ListAPIView):
    serializer_class = InvoiceSerializer
    filterset_fields = ["status"]
    ordering_fields = ["period_start", "total", "due_at"]
    ordering = ["-period_start", "-id"]
    search_fields = ["number"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return selectors.invoices_of(self.request.tenant)

    def list(self, request, *args, **kwargs):
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            return super().list(request, *args, **kwargs)


class InvoiceDetailView(IdempotentPostMixin, APIView):
    @extend_schema(responses=InvoiceDetailSerializer, summary="One invoice with its lines and payments")
    def get(self, request, pk: int):
        invoice = selectors.invoice_of(request.tenant, pk)
        return Response(InvoiceDetailSerializer(invoice).data)


class PlanChangeInput(serializers.Serializer):
    plan = serializers.SlugField()
    interval = serializers.ChoiceField(choices=BillingInterval.choices, required=False)
    preview = serializers.BooleanField(default=False)

    def validate_plan(self, value):
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            plan = Plan.objects.filter(code=value, is_public=True).first()
        if plan is None:
            raise serializers.ValidationError("Unknown plan.")
        return plan


class PreviewSerializer(serializers.Serializer):
    from_plan = serializers.CharField(source="from_plan.code")
    to_plan = serializers.CharField(source="to_plan.code")
    from_interval = serializers.CharField()
    to_interval = serializers.CharField()
    currency = serializers.CharField()
    credit = serializers.DecimalField(max_digits=14, decimal_places=4)
    charge = serializers.DecimalField(max_digits=14, decimal_places=4)
    net = serializers.DecimalField(max_digits=14, decimal_places=4)
    invoiced_now = serializers.BooleanField()
    next_invoice_at = serializers.DateTimeField()
    new_period_start = serializers.DateTimeField()
    new_period_end = serializers.DateTimeField()
    trial = serializers.BooleanField()
    allowed = serializers.BooleanField()
    blockers = serializers.ListField(child=serializers.CharField())


class PlanChangeView(IdempotentPostMixin, APIView):
    """GET ?plan=&interval= previews; POST changes (or previews with ``"preview": true``)."""

    permission_classes = [IsAuthenticated, ReadOrManager]

    def _input(self, data, request):
        sub = selectors.subscription_of(request.tenant)
        serializer = PlanChangeInput(data=data)
        serializer.is_valid(raise_exception=True)
        interval = serializer.validated_data.get("interval") or (sub.interval if sub else BillingInterval.MONTH)
        return serializer.validated_data["plan"], interval, serializer.validated_data["preview"]

    @extend_schema(
        parameters=[
            # the same rules as PlanChangeInput's (the POST body)
            OpenApiParameter("plan", {"type": "string", "minLength": 1, "pattern": r"^[-a-zA-Z0-9_]+$"}, required=True),
            OpenApiParameter("interval", str, enum=list(BillingInterval.values)),
        ],
        responses=PreviewSerializer,
        summary="Preview the proration of a plan change",
    )
    def get(self, request):
        # A plain dict: DRF reads an empty value in form-like input as "not given" (``?interval=``
        # would silently be the current interval); here it is a value, refused as a choice.
        plan, interval, _ = self._input(request.query_params.dict(), request)
        preview = services.subscription_change_preview(tenant=request.tenant, plan=plan, interval=interval)
        return Response(PreviewSerializer(preview).data)

    @extend_schema(
        request=PlanChangeInput,
        responses={200: PreviewSerializer, 201: SubscriptionSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        summary="Change plan now (prorated), or preview it",
    )
    def post(self, request):
        plan, interval, preview_only = self._input(request.data, request)
        if preview_only:
            preview = services.subscription_change_preview(tenant=request.tenant, plan=plan, interval=interval)
            return Response(PreviewSerializer(preview).data)
        result = services.subscription_change_plan(
            tenant=request.tenant, plan=plan, interval=interval, actor=_actor(request), ip=_ip(request)
        )
        body = {
            "subscription": SubscriptionSerializer(result.subscription).data,
            "proration": PreviewSerializer(result.preview).data,
            "invoice": InvoiceSerializer(result.invoice).data if result.invoice else None,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class CancelView(IdempotentPostMixin, APIView):
    permission_classes = [IsAuthenticated, ReadOrManager]

    @extend_schema(request=None, responses=SubscriptionSerializer, summary="Cancel at the end of the period")
    def post(self, request):
        sub = services.subscription_cancel(tenant=request.tenant, actor=_actor(request), ip=_ip(request))
        return Response(SubscriptionSerializer(sub).data)


class ReactivateView(IdempotentPostMixin, APIView):
    permission_classes = [IsAuthenticated, ReadOrManager]

    @extend_schema(request=None, responses=SubscriptionSerializer, summary="Undo a cancellation")
    def post(self, request):
        sub = services.subscription_reactivate(tenant=request.tenant, actor=_actor(request), ip=_ip(request))
        return Response(SubscriptionSerializer(sub).data)


class PlanListView(IdempotentPostMixin, generics.ListAPIView):
    serializer_class = PlanSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return Plan.objects.filter(is_public=True)
