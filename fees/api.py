"""/api/v1/ of the fee business: products, fee schedules, billing groups, client subscriptions,
fee runs, fee invoices, fee statements, fee revenue. Thin: writes in ``fees.services``, reads and
scoping in ``fees.selectors``.

Roles: owners, admins and write API keys manage; advisors read the groups, subscriptions and
invoices of their own book's clients; viewers and read keys read. The firm's plan must include
``fee_billing`` (402 otherwise).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from billing.money import CURRENCY_EXPONENTS
from codex.api.filters import refuse_empty_params
from codex.api.idempotency import IdempotentPostMixin
from codex.api.lifecycle import deprecated, deprecated_fields, field_deprecation
from crm import access as crm_access
from portfolios import access as portfolio_access
from portfolios.market.models import AssetClass
from portfolios.models import Portfolio

from . import selectors, services
from .models import (
    BillingGroup,
    ClientSubscription,
    Collection,
    DayCount,
    FeeInvoice,
    FeeInvoiceLine,
    FeeMethod,
    FeeRun,
    FeeRunItem,
    FeeRunJob,
    FeeSchedule,
    FeeScheduleVersion,
    FeeStatement,
    Frequency,
    JobKind,
    Product,
    Timing,
)


class ManagesFees(BasePermission):
    """Reads for every member; writes for owners, admins and write API keys."""

    message = "Only the firm's owners and admins (or a write API key) manage fees."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or selectors.can_manage(request.user)


# The ISO 4217 codes billing knows the minor unit of: the services refuse any other (a fee is rounded
# to the currency's minor unit), so the schema lists them.
CURRENCIES = sorted(CURRENCY_EXPONENTS)


class FeesViewSet(IdempotentPostMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, ManagesFees]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        services.fee_billing_check(tenant=request.tenant)


# --- serializers ------------------------------------------------------------------------------------


class FeeTierSerializer(serializers.Serializer):
    upto = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        allow_null=True,
        min_value=Decimal(0),
        help_text="The tier's upper bound of billable value: tiers rise by it from above zero, each above "
        "the one before, and only the last is open (null).",
    )
    bps = serializers.DecimalField(
        max_digits=10, decimal_places=4, min_value=Decimal("0"), help_text="Annual rate in basis points."
    )


class FeeScheduleVersionSerializer(serializers.ModelSerializer):
    """One dated version: the terms and what is excluded from the billable value from
    ``effective_from`` until the next version (decision 1200)."""

    tiers = FeeTierSerializer(many=True)
    excluded_instruments: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )
    excluded_asset_classes = serializers.ListField(child=serializers.ChoiceField(choices=AssetClass.choices))

    class Meta:
        model = FeeScheduleVersion
        fields = [
            "id",
            "effective_from",
            "method",
            "tiers",
            "flat_annual",
            "minimum_annual",
            "maximum_annual",
            "exclude_cash",
            "excluded_instruments",
            "excluded_asset_classes",
        ]


class FeeScheduleVersionWriteSerializer(serializers.Serializer):
    effective_from = serializers.DateField()
    method = serializers.ChoiceField(choices=FeeMethod.choices)
    tiers = serializers.ListField(child=FeeTierSerializer(), min_length=1)
    flat_annual = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=Decimal(0), required=False, default=Decimal(0)
    )
    minimum_annual = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=Decimal(0), required=False, default=Decimal(0)
    )
    maximum_annual = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    exclude_cash = serializers.BooleanField(default=False)
    excluded_instruments = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        help_text="Instrument ids whose positions are not billable (their daily close is taken out).",
    )
    excluded_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=AssetClass.choices),
        required=False,
        default=list,
        help_text="Asset classes whose positions are not billable.",
    )


class FeeScheduleChangeSerializer(serializers.Serializer):
    """A new version from a date: every field but ``effective_from`` is optional and, left out,
    carried over from the version in effect on that date."""

    effective_from = serializers.DateField()
    method = serializers.ChoiceField(choices=FeeMethod.choices, required=False)
    tiers = serializers.ListField(child=FeeTierSerializer(), min_length=1, required=False)
    flat_annual = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0), required=False)
    minimum_annual = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0), required=False)
    maximum_annual = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    exclude_cash = serializers.BooleanField(required=False)
    excluded_instruments = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Replaces the list from the date."
    )
    excluded_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=AssetClass.choices),
        required=False,
        help_text="Replaces the list from the date.",
    )


# v1 kept the schedule's own exclusion fields when exclusions moved into its dated versions
# (decision 1350, docs/api.md): read as the version in effect today's, written as a new version
# from today.
V1_SCHEDULE_EXCLUSIONS = field_deprecation(since=date(2026, 12, 7), sunset=date(2027, 6, 30))
_READ_VERSIONS = V1_SCHEDULE_EXCLUSIONS.note("Read them on `versions[]`: each version's own, from its date.")
_WRITE_VERSIONS = V1_SCHEDULE_EXCLUSIONS.note(
    "Sent here, they make a new version from today (409 when one from today exists); "
    "date a change with `POST /api/v1/fee-schedules/{id}/versions/` and `effective_from`."
)


@deprecated_fields(V1_SCHEDULE_EXCLUSIONS, "exclude_cash", "excluded_instruments", "excluded_asset_classes")
class FeeScheduleSerializer(serializers.ModelSerializer):
    versions = FeeScheduleVersionSerializer(many=True, read_only=True)
    exclude_cash = serializers.BooleanField(
        source="current_version.exclude_cash",
        read_only=True,
        help_text="The version in effect today's: cash is not billable. " + _READ_VERSIONS,
    )
    excluded_instruments: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        source="current_version.excluded_instruments",
        many=True,
        read_only=True,
        help_text="The version in effect today's excluded instrument ids. " + _READ_VERSIONS,
    )
    excluded_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=AssetClass.choices),
        source="current_version.excluded_asset_classes",
        read_only=True,
        help_text="The version in effect today's excluded asset classes. " + _READ_VERSIONS,
    )

    class Meta:
        model = FeeSchedule
        fields = [
            "id",
            "name",
            "currency",
            "exclude_cash",
            "excluded_instruments",
            "excluded_asset_classes",
            "archived",
            "versions",
            "created_at",
        ]


class FeeScheduleWriteSerializer(FeeScheduleVersionWriteSerializer):
    name = serializers.CharField(max_length=200)
    currency = serializers.ChoiceField(choices=CURRENCIES, default="USD")


@deprecated_fields(V1_SCHEDULE_EXCLUSIONS, "exclude_cash", "excluded_instruments", "excluded_asset_classes")
class FeeSchedulePatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    archived = serializers.BooleanField(required=False, help_text="Archived: no new product may use it.")
    exclude_cash = serializers.BooleanField(required=False, help_text=_WRITE_VERSIONS)
    excluded_instruments = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Replaces the list. " + _WRITE_VERSIONS
    )
    excluded_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=AssetClass.choices),
        required=False,
        help_text="Replaces the list. " + _WRITE_VERSIONS,
    )


SCHEDULE_EXAMPLE = OpenApiExample(
    "Tiered, 1 % to 1M then 0.75 %",
    value={
        "name": "Standard",
        "currency": "USD",
        "effective_from": "2026-01-01",
        "method": "tiered",
        "tiers": [{"upto": "1000000", "bps": "100"}, {"upto": None, "bps": "75"}],
        "minimum_annual": "2500",
    },
    request_only=True,
)


class FeeProductSerializer(serializers.ModelSerializer):
    currency = serializers.ChoiceField(choices=CURRENCIES, default="USD")
    fee_schedule = serializers.PrimaryKeyRelatedField(
        queryset=FeeSchedule.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Product
        fields = ["id", "name", "description", "currency", "flat_fee", "fee_schedule", "archived", "created_at"]
        # A product is archived later (PATCH), never created archived: product_create takes no flag.
        read_only_fields = ["archived", "created_at"]
        validators: list = []
        extra_kwargs: dict[str, dict[str, object]] = {"name": {"validators": []}, "flat_fee": {"min_value": Decimal(0)}}


class FeeProductPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    archived = serializers.BooleanField(required=False)


class BillingGroupSerializer(serializers.ModelSerializer):
    portfolios = serializers.PrimaryKeyRelatedField(many=True, queryset=Portfolio.objects.all())
    currency = serializers.ChoiceField(
        choices=CURRENCIES, required=False, allow_blank=True, help_text="Default: the accounts' base currency."
    )

    class Meta:
        model = BillingGroup
        fields = ["id", "name", "client", "currency", "portfolios", "created_at"]
        read_only_fields = ["created_at"]


class BillingGroupPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    portfolios = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Portfolio.objects.all(),
        required=False,
        help_text="Replaces the group's accounts (at least one; an account is billed in one group only). "
        "Issued invoices keep their lines; the next run bills the new accounts.",
    )


class ClientSubscriptionSerializer(serializers.ModelSerializer):
    ends_on = serializers.DateField(
        required=False, allow_null=True, help_text="Inclusive; not before starts_on. Absent or null: open-ended."
    )
    frequency = serializers.ChoiceField(choices=Frequency.choices, default=Frequency.QUARTERLY)
    timing = serializers.ChoiceField(choices=Timing.choices, default=Timing.ARREARS_ADB)
    day_count = serializers.ChoiceField(choices=DayCount.choices, default=DayCount.ACTUAL_365)
    collection = serializers.ChoiceField(choices=Collection.choices, default=Collection.INVOICE)

    class Meta:
        model = ClientSubscription
        fields = [
            "id",
            "group",
            "product",
            "starts_on",
            "ends_on",
            "frequency",
            "timing",
            "day_count",
            "collection",
            "created_at",
        ]
        read_only_fields = ["created_at"]


class ClientSubscriptionEndSerializer(serializers.Serializer):
    ends_on = serializers.DateField()


class FeeRunItemSerializer(serializers.ModelSerializer):
    group_name = serializers.CharField(source="group.name", read_only=True)

    class Meta:
        model = FeeRunItem
        fields = ["group", "group_name", "currency", "total", "lines", "problems", "skipped"]


class FeeRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeeRun
        fields = [
            "id",
            "period_start",
            "period_end",
            "frequency",
            "status",
            "approved_at",
            "issued_at",
            "created_at",
        ]


class FeeRunDetailSerializer(FeeRunSerializer):
    items = FeeRunItemSerializer(many=True, read_only=True)

    class Meta(FeeRunSerializer.Meta):
        fields = [*FeeRunSerializer.Meta.fields, "items"]


class FeeRunCreateSerializer(serializers.Serializer):
    period_start = serializers.DateField(help_text="The first day of a month (monthly) or of a calendar quarter.")
    period_end = serializers.DateField(help_text="The last day of the month or quarter that starts on period_start.")
    frequency = serializers.ChoiceField(choices=Frequency.choices)


class FeeRunIssueSerializer(serializers.Serializer):
    issued_on = serializers.DateField(required=False)


class FeeRunIssueResultSerializer(serializers.Serializer):
    groups = serializers.IntegerField()
    ready = serializers.IntegerField()
    with_problems = serializers.IntegerField()
    skipped = serializers.IntegerField()


class FeeRunJobProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Billing groups computed (a preview) or issued (an issue).")
    total = serializers.IntegerField()


class FeeRunJobSerializer(serializers.ModelSerializer):
    """A fee run's preview or issue done in the background (decisions 1201, 1351)."""

    url = serializers.SerializerMethodField(help_text="This job: GET it until `status` is done or failed.")
    run_url = serializers.SerializerMethodField(help_text="The run it computed or issued, once known.")
    progress = serializers.SerializerMethodField(
        help_text="While it runs: billing groups done of all; null before it counts and once it ended."
    )
    result = serializers.JSONField(
        read_only=True,
        help_text="Once done: a preview's `run` and `groups`; an issue's `run`, `groups`, `ready`, "
        "`with_problems` and `skipped` (as the old synchronous issue answered). Empty before, and on failure.",
    )

    class Meta:
        model = FeeRunJob
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "period_start",
            "period_end",
            "frequency",
            "issued_on",
            "run",
            "run_url",
            "progress",
            "message",
            "result",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_url(self, job) -> str:
        return f"/api/v1/fee-run-jobs/{job.pk}/"

    def get_run_url(self, job) -> str | None:
        return f"/api/v1/fee-runs/{job.run_id}/" if job.run_id else None

    @extend_schema_field(FeeRunJobProgressSerializer(allow_null=True))
    def get_progress(self, job):
        if not self.context.get("with_progress") or not job.active:
            return None
        counted = services.fee_run_job_progress(job=job)
        return None if counted is None else {"done": counted[0], "total": counted[1]}


class FeeRunJobStartSerializer(serializers.Serializer):
    """A preview names its period; an issue names its approved run (the schema states which
    fields each kind requires: fees/apps.py)."""

    kind = serializers.ChoiceField(
        choices=JobKind.choices, help_text="`preview`: compute a period's fees; `issue`: issue an approved run."
    )
    period_start = serializers.DateField(
        required=False, help_text="A preview's: the first day of a month (monthly) or of a calendar quarter."
    )
    period_end = serializers.DateField(
        required=False, help_text="A preview's: the last day of the month or quarter that starts on period_start."
    )
    frequency = serializers.ChoiceField(choices=Frequency.choices, required=False, help_text="A preview's.")
    run = serializers.IntegerField(min_value=1, required=False, help_text="An issue's: the approved run's id.")
    issued_on = serializers.DateField(required=False, help_text="An issue's: the invoices' date (default today).")

    def validate(self, attrs):
        needed = ("period_start", "period_end", "frequency") if attrs["kind"] == JobKind.PREVIEW else ("run",)
        missing = {f: f"Required to start a {attrs['kind']}." for f in needed if f not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class FeeInvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeeInvoiceLine
        fields = [
            "description",
            "portfolio",
            "subscription",
            "billable_value",
            "days",
            "rate_bps",
            "amount",
            "fee_transaction",
        ]


class FeeInvoiceSerializer(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = FeeInvoice
        fields = [
            "id",
            "number",
            "kind",
            "group",
            "client",
            "period_start",
            "period_end",
            "issued_on",
            "due_on",
            "currency",
            "total",
            "collection",
            "status",
            "overdue",
            "paid_on",
            "void_reason",
            "credit_of",
            "run",
        ]

    def get_overdue(self, obj) -> bool:
        from django.utils import timezone

        return selectors.is_overdue(obj, today=timezone.localdate())


class FeeInvoiceDetailSerializer(FeeInvoiceSerializer):
    lines = FeeInvoiceLineSerializer(many=True, read_only=True)

    class Meta(FeeInvoiceSerializer.Meta):
        fields = [*FeeInvoiceSerializer.Meta.fields, "lines"]


class FeeInvoiceVoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class FeeCreditNoteSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    reason = serializers.CharField(max_length=500)


class FeeInvoicePaidSerializer(serializers.Serializer):
    paid_on = serializers.DateField(required=False)


class FeeStatementSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="invoice.number", read_only=True)

    class Meta:
        model = FeeStatement
        fields = ["id", "invoice", "number", "client", "period_start", "period_end", "created_at"]


class FeeReturnsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    net = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    gross = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    fees = serializers.DecimalField(max_digits=18, decimal_places=2)


class FeeRangeSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "The end is before the start."})
        return attrs


# --- views ------------------------------------------------------------------------------------------


class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Service packages: a flat fee per period, a fee schedule on assets, or both."""

    serializer_class = FeeProductSerializer
    filterset_fields = ["archived", "currency"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.products_list()

    @extend_schema(
        request=FeeProductSerializer,
        responses={201: FeeProductSerializer},
        summary="Add a product",
        examples=[
            OpenApiExample(
                "Managed account",
                value={"name": "Managed account", "fee_schedule": 1, "flat_fee": "150.00"},
                request_only=True,
            )
        ],
    )
    def create(self, request):
        data = FeeProductSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(**data.validated_data)
        return Response(FeeProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=FeeProductPatchSerializer, responses=FeeProductSerializer, summary="Rename, describe or archive"
    )
    def partial_update(self, request, pk=None):
        data = FeeProductPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_update(product=self.get_object(), **data.validated_data)
        return Response(FeeProductSerializer(product).data)


class FeeScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Fee schedules with their versions (effective dates): tiered or blended bps, flat, min, max."""

    serializer_class = FeeScheduleSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.schedules_list()

    @extend_schema(
        request=FeeScheduleWriteSerializer,
        responses={201: FeeScheduleSerializer},
        examples=[SCHEDULE_EXAMPLE],
        summary="Add a schedule",
    )
    def create(self, request):
        data = FeeScheduleWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = services.fee_schedule_create(**data.validated_data)
        return Response(
            FeeScheduleSerializer(selectors.schedules_list().get(pk=schedule.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=FeeSchedulePatchSerializer,
        responses=FeeScheduleSerializer,
        summary="Rename, archive or restore",
        description="Terms and exclusions are dated: change them with `POST /fee-schedules/{id}/versions/`. "
        "The exclusion fields still accepted here (deprecated) make a new version from today.",
    )
    def partial_update(self, request, pk=None):
        schedule = self.get_object()
        dated = [f for f in (*services.TERM_FIELDS, "effective_from") if f in request.data]
        if dated:
            raise serializers.ValidationError(
                {
                    f: f"Terms are dated: POST them to /api/v1/fee-schedules/{schedule.pk}/versions/ "
                    "with effective_from."
                    for f in dated
                }
            )
        data = FeeSchedulePatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = services.fee_schedule_update(schedule=schedule, **data.validated_data)
        return Response(FeeScheduleSerializer(selectors.schedules_list().get(pk=schedule.pk)).data)

    @extend_schema(
        request=FeeScheduleChangeSerializer,
        responses={201: FeeScheduleVersionSerializer},
        summary="New terms and/or exclusions from a date",
        description="A new version from `effective_from`; the fields left out are carried over from the "
        "version in effect on that date. Periods before keep the old version; a second version on the "
        "same date is refused (409, `effective_from`).",
        examples=[
            OpenApiExample(
                "Exclude real estate from 15 August",
                value={"effective_from": "2026-08-15", "excluded_asset_classes": ["real_estate"]},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def versions(self, request, pk=None):
        data = FeeScheduleChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.fee_schedule_change(schedule=self.get_object(), **data.validated_data)
        return Response(FeeScheduleVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class BillingGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Households: accounts billed together on their combined value (or one account alone)."""

    serializer_class = BillingGroupSerializer
    filterset_fields = ["client", "currency"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.groups_for(self.request.user).prefetch_related("portfolios")

    @extend_schema(
        request=BillingGroupSerializer,
        responses={201: BillingGroupSerializer},
        summary="Add a billing group",
        examples=[
            OpenApiExample(
                "Household",
                value={"name": "Smith household", "client": 1, "portfolios": [1, 2], "currency": "USD"},
                request_only=True,
            )
        ],
    )
    def create(self, request):
        data = BillingGroupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        contact = crm_access.contact_for_user(request.user, values["client"].pk)
        for p in values["portfolios"]:
            portfolio_access.portfolio_for_user(request.user, p.pk)
        group = services.billing_group_create(
            name=values["name"],
            client=contact,
            portfolios=values["portfolios"],
            currency=values.get("currency") or None,
        )
        return Response(BillingGroupSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=BillingGroupPatchSerializer,
        responses=BillingGroupSerializer,
        summary="Rename a billing group or change its accounts",
        examples=[OpenApiExample("Add an account", value={"portfolios": [1, 2, 3]}, request_only=True)],
    )
    def partial_update(self, request, pk=None):
        group = self.get_object()
        data = BillingGroupPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        for p in values.get("portfolios", ()):
            portfolio_access.portfolio_for_user(request.user, p.pk)
        services.billing_group_update(group=group, name=values.get("name"), portfolios=values.get("portfolios"))
        return Response(BillingGroupSerializer(self.get_queryset().get(pk=group.pk)).data)


class ClientSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """A client's (or household's) subscription to a product."""

    serializer_class = ClientSubscriptionSerializer
    filterset_fields = ["group", "product", "frequency", "collection"]
    ordering_fields = ["starts_on", "created_at"]

    def get_queryset(self):
        return selectors.subscriptions_for(self.request.user)

    def _group(self, group):
        if not selectors.groups_for(self.request.user).filter(pk=group.pk).exists():
            raise PermissionDenied("This billing group is not yours.")
        return group

    @extend_schema(
        request=ClientSubscriptionSerializer,
        responses={201: ClientSubscriptionSerializer},
        summary="Subscribe a group to a product",
        examples=[
            OpenApiExample(
                "Quarterly in arrears",
                value={
                    "group": 1,
                    "product": 1,
                    "starts_on": "2026-07-01",
                    "frequency": "quarterly",
                    "timing": "arrears_adb",
                    "collection": "deduct",
                },
                request_only=True,
            )
        ],
    )
    def create(self, request):
        data = ClientSubscriptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["group"] = self._group(values["group"])
        sub = services.subscription_create(**values)
        return Response(ClientSubscriptionSerializer(sub).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ClientSubscriptionEndSerializer,
        responses=ClientSubscriptionSerializer,
        summary="End (termination pro rata)",
    )
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        data = ClientSubscriptionEndSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sub = services.subscription_end(subscription=self.get_object(), **data.validated_data)
        return Response(ClientSubscriptionSerializer(sub).data)


# Runs computed and issued in the request (v1's first shape) give way to jobs (decision 1351).
SYNC_RUNS_DEPRECATED = date(2026, 12, 7)
SYNC_RUNS_SUNSET = date(2027, 6, 30)
SYNC_RUNS_INSTEAD = "/api/v1/docs/#/fee-run-jobs/fee_run_jobs_create"


class FeeRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Fee runs: preview (created), approve, issue. Owners and admins only, for reads too: a run
    shows every client's fees."""

    serializer_class = FeeRunSerializer
    filterset_fields = ["status", "frequency"]
    ordering_fields = ["period_start", "created_at"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not crm_access.sees_whole_firm(request.user):
            raise PermissionDenied("Fee runs are for the firm's owners, admins and viewers.")

    def get_queryset(self):
        return selectors.runs_list()

    def get_serializer_class(self):
        return FeeRunDetailSerializer if self.action == "retrieve" else FeeRunSerializer

    def retrieve(self, request, pk=None):
        run = self.get_object()
        run = FeeRun.objects.prefetch_related("items__group").get(pk=run.pk)
        return Response(FeeRunDetailSerializer(run).data)

    @extend_schema(
        request=FeeRunCreateSerializer,
        responses={201: FeeRunDetailSerializer},
        summary="Compute a period's fees (preview) in the request (deprecated)",
        description="Kept for v1's older clients until its sunset: the request waits for the whole preview. "
        'Start a job instead: `POST /api/v1/fee-run-jobs/` with `{"kind": "preview", ...}` (decision 1351).',
        examples=[
            OpenApiExample(
                "Q3 2026",
                value={"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"},
                request_only=True,
            )
        ],
    )
    @deprecated(since=SYNC_RUNS_DEPRECATED, sunset=SYNC_RUNS_SUNSET, link=SYNC_RUNS_INSTEAD)
    def create(self, request):
        data = FeeRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.fee_run_preview(actor=request.user, **data.validated_data)
        run = FeeRun.objects.prefetch_related("items__group").get(pk=run.pk)
        return Response(FeeRunDetailSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=FeeRunSerializer, summary="Approve the preview")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        run = services.fee_run_approve(run=self.get_object(), actor=request.user)
        return Response(FeeRunSerializer(run).data)

    @extend_schema(
        request=FeeRunIssueSerializer,
        responses=FeeRunIssueResultSerializer,
        summary="Issue the approved run in the request (deprecated)",
        description="Kept for v1's older clients until its sunset: the request waits for the whole issue. "
        'Start a job instead: `POST /api/v1/fee-run-jobs/` with `{"kind": "issue", "run": <id>}` (decision 1351).',
    )
    @deprecated(since=SYNC_RUNS_DEPRECATED, sunset=SYNC_RUNS_SUNSET, link=SYNC_RUNS_INSTEAD)
    @action(detail=True, methods=["post"])
    def issue(self, request, pk=None):
        data = FeeRunIssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        counts = services.fee_run_issue(run=self.get_object(), actor=request.user, **data.validated_data)
        return Response(FeeRunIssueResultSerializer(counts).data)


class FeeRunJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Fee run previews and issues as background jobs (decision 1351): POST starts one and answers
    202 with its URL at once; GET it for progress and, once done, the result. Owners and admins
    start them; viewers read them, as fee runs."""

    serializer_class = FeeRunJobSerializer
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not crm_access.sees_whole_firm(request.user):
            raise PermissionDenied("Fee runs are for the firm's owners, admins and viewers.")

    def get_queryset(self):
        return selectors.run_jobs_list()

    def retrieve(self, request, pk=None):
        return Response(FeeRunJobSerializer(self.get_object(), context={"with_progress": True}).data)

    @extend_schema(
        request=FeeRunJobStartSerializer,
        responses={202: FeeRunJobSerializer},
        summary="Start a preview or an issue",
        description="Answers at once, 202 with the job and its URL (also in `Location`). A preview's period "
        "is checked before (400 naming the field); an issue is refused with 404 when no such run exists, "
        "409 (`status`) when the run is not approved or is being issued already.",
        examples=[
            OpenApiExample(
                "Preview Q3 2026",
                value={
                    "kind": "preview",
                    "period_start": "2026-07-01",
                    "period_end": "2026-09-30",
                    "frequency": "quarterly",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Issue run 12", value={"kind": "issue", "run": 12, "issued_on": "2026-10-01"}, request_only=True
            ),
        ],
    )
    def create(self, request):
        data = FeeRunJobStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        start = data.validated_data
        if start["kind"] == JobKind.PREVIEW:
            job = services.fee_run_preview_queue(
                period_start=start["period_start"],
                period_end=start["period_end"],
                frequency=start["frequency"],
                actor=request.user,
            )
        else:
            run = selectors.runs_list().filter(pk=start["run"]).first()
            if run is None:
                raise NotFound("No fee run with this id.")
            job = services.fee_run_issue_queue(run=run, actor=request.user, issued_on=start.get("issued_on"))
        body = FeeRunJobSerializer(job, context={"with_progress": True}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class FeeInvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Fee invoices and credit notes, numbered gaplessly per firm."""

    serializer_class = FeeInvoiceSerializer
    filterset_fields = ["status", "kind", "group", "client", "period_start", "collection"]
    search_fields = ["number"]
    ordering_fields = ["issued_on", "number", "total"]

    def get_queryset(self):
        return selectors.invoices_for(self.request.user)

    def retrieve(self, request, pk=None):
        invoice = self.get_object()
        invoice = selectors.invoices_for(request.user).prefetch_related("lines").get(pk=invoice.pk)
        return Response(FeeInvoiceDetailSerializer(invoice).data)

    @extend_schema(request=FeeInvoiceVoidSerializer, responses=FeeInvoiceSerializer, summary="Void with a reason")
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        data = FeeInvoiceVoidSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            FeeInvoiceSerializer(services.fee_invoice_void(invoice=self.get_object(), **data.validated_data)).data
        )

    @extend_schema(request=FeeCreditNoteSerializer, responses={201: FeeInvoiceSerializer}, summary="Credit note")
    @action(detail=True, methods=["post"], url_path="credit-note")
    def credit_note(self, request, pk=None):
        data = FeeCreditNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.fee_credit_note(invoice=self.get_object(), **data.validated_data)
        return Response(FeeInvoiceSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FeeInvoicePaidSerializer, responses=FeeInvoiceSerializer, summary="Mark paid")
    @action(detail=True, methods=["post"], url_path="mark-paid")
    def mark_paid(self, request, pk=None):
        data = FeeInvoicePaidSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invoice = services.fee_invoice_mark_paid(invoice=self.get_object(), **data.validated_data)
        return Response(FeeInvoiceSerializer(invoice).data)


class FeeStatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FeesViewSet):
    """Stored fee statements (PDF), per client and period; for the firm and the client portal."""

    serializer_class = FeeStatementSerializer
    filterset_fields = ["client", "period_end"]
    ordering_fields = ["period_end", "created_at"]

    def get_queryset(self):
        return selectors.statements_for(self.request.user)

    @extend_schema(responses={(200, "application/pdf"): bytes}, summary="The statement's PDF")
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        statement = self.get_object()
        return FileResponse(
            statement.file.open("rb"), content_type="application/pdf", filename=f"{statement.invoice.number}.pdf"
        )


class PortfolioFeeReturnsView(IdempotentPostMixin, generics.GenericAPIView):
    """Time-weighted return of a portfolio gross and net of the advisory fees deducted from it."""

    permission_classes = [IsAuthenticated]
    serializer_class = FeeReturnsSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, required=True),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True),
        ],
        responses=FeeReturnsSerializer,
        summary="Returns gross and net of fees",
    )
    def get(self, request, portfolio_pk: int):
        services.fee_billing_check(tenant=request.tenant)
        portfolio = portfolio_access.portfolio_for_user(request.user, portfolio_pk)
        params = FeeRangeSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        result = selectors.portfolio_returns_gross_net(portfolio=portfolio, **params.validated_data)
        return Response(FeeReturnsSerializer(result).data)


class FeeRevenueRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField(source="label")
    currency = serializers.CharField()
    revenue = serializers.DecimalField(max_digits=18, decimal_places=2)
    billable_value = serializers.DecimalField(max_digits=20, decimal_places=2)
    rate_bps = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)


class FeeRevenueTotalSerializer(serializers.Serializer):
    currency = serializers.CharField()
    revenue = serializers.DecimalField(max_digits=18, decimal_places=2)
    billable_aum = serializers.DecimalField(
        max_digits=20, decimal_places=2, help_text="Billable value of the last period invoiced in the range."
    )


# v1 kept these fields when the totals became one per currency (decision 1350, docs/api.md).
V1_SINGLE_CURRENCY = field_deprecation(since=date(2026, 12, 7), sunset=date(2027, 6, 30))


@deprecated_fields(V1_SINGLE_CURRENCY, "total", "billable_aum")
class FeeRevenueSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    by = serializers.CharField()
    rows = FeeRevenueRowSerializer(many=True, help_text="One row per key and currency.")
    totals = FeeRevenueTotalSerializer(many=True, help_text="One per currency: amounts are never added across.")
    total = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        allow_null=True,
        help_text="The revenue when the range billed one currency (0.00 when none); null when it billed "
        "several, which are never added up. " + V1_SINGLE_CURRENCY.note("Read `totals[].revenue`."),
    )
    billable_aum = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        allow_null=True,
        help_text="Billable value of the last period invoiced in the range, when it billed one currency "
        "(0.00 when none); null when several. " + V1_SINGLE_CURRENCY.note("Read `totals[].billable_aum`."),
    )


class FeeRevenueParams(FeeRangeSerializer):
    by = serializers.ChoiceField(choices=selectors.REVENUE_DIMENSIONS, default="month")


REVENUE_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE, required=True),
    OpenApiParameter("end", OpenApiTypes.DATE, required=True),
    OpenApiParameter("by", OpenApiTypes.STR, enum=list(selectors.REVENUE_DIMENSIONS), description="Default month."),
]


def _revenue(request):
    services.fee_billing_check(tenant=request.tenant)
    # DRF reads an empty optional query value as absent (the default); a typed parameter sent
    # empty is refused instead (docs/api.md: invalid parameters are never ignored).
    refuse_empty_params(request.query_params, "by")
    params = FeeRevenueParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    return selectors.fee_revenue(user=request.user, **params.validated_data)


class FeeRevenueView(IdempotentPostMixin, generics.GenericAPIView):
    """The firm's fee revenue (advisors: their book's) by month, advisor, product, household or
    client; billable AUM; effective annual rate in bps."""

    permission_classes = [IsAuthenticated]
    serializer_class = FeeRevenueSerializer

    @extend_schema(parameters=REVENUE_PARAMETERS, responses=FeeRevenueSerializer, summary="Fee revenue")
    def get(self, request):
        return Response(FeeRevenueSerializer(_revenue(request)).data)


class FeeRevenueExportView(IdempotentPostMixin, generics.GenericAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=REVENUE_PARAMETERS,
        responses={(200, "text/csv"): str},
        summary="Fee revenue as CSV",
        description="Columns: the dimension, `revenue`, `billable_value`, `effective_rate_bps`, `currency` "
        "(a row per key and currency), then a `total` row per currency.",
    )
    def get(self, request):
        rows = selectors.revenue_csv_rows(_revenue(request), currency_last=True)
        return csv_response(rows, filename="fee-revenue.csv")


def csv_response(rows: list[list[str]], *, filename: str) -> HttpResponse:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
