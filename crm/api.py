"""The CRM's REST API (/api/v1/...). Thin: scoping in crm.access, writes in crm.services, reads in
crm.selectors. Every list is paginated, filterable, searchable and orderable.

Over 600 lines because the serializers, filters and viewsets of the CRM's resources (contacts,
companies, deals, activities and tasks, stages, newsletter, imports) are declared together, in
three sections.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiRequest, extend_schema, inline_serializer
from rest_framework import filters, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex import imports as engine
from codex.api.errors import Conflict
from codex.api.fields import CurrencyField
from codex.api.filters import StrictFilterBackend, StrictOrderingFilter
from codex.api.idempotency import IdempotentPostMixin
from codex.api.parsers import BoundedJSONParser
from codex.api.permissions import CanWrite
from tenants.accounts.models import User

from . import access, exports, selectors, services
from .models import (
    Activity,
    ActivityKind,
    Campaign,
    Company,
    Contact,
    Deal,
    ImportJob,
    PipelineStage,
    Subscriber,
)
from .newsletter import services as newsletter_services

# --- serializers ------------------------------------------------------------------------------------


class MemberField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return User.objects.filter(is_active=True)


class ContactSerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)
    company = serializers.PrimaryKeyRelatedField(queryset=Company.objects.all(), required=False, allow_null=True)
    name = serializers.CharField(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "first_name",
            "last_name",
            "email",
            "phone",
            "other_emails",
            "other_phones",
            "company",
            "job_title",
            "lifecycle",
            "owner",
            "shared_with",
            "tags",
            "source",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness is the service's job (case-insensitive, firm-wide).
        validators: list = []
        extra_kwargs: dict[str, dict[str, object]] = {"email": {"validators": []}}


class CompanySerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)

    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "domain",
            "website",
            "phone",
            "industry",
            "owner",
            "shared_with",
            "tags",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class PipelineStageSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineStage
        fields = ["id", "name", "position", "probability", "kind", "is_active"]


class DealSerializer(serializers.ModelSerializer):
    owner = MemberField(required=False, allow_null=True)
    shared_with = MemberField(many=True, required=False)
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    company = serializers.PrimaryKeyRelatedField(queryset=Company.objects.all(), required=False, allow_null=True)
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects.filter(is_active=True), required=False)
    stage_name = serializers.CharField(source="stage.name", read_only=True)
    weighted_amount = serializers.DecimalField(max_digits=18, decimal_places=2, read_only=True)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=0, required=False)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    currency = CurrencyField(required=False)

    class Meta:
        model = Deal
        fields = [
            "id",
            "title",
            "contact",
            "company",
            "stage",
            "stage_name",
            "amount",
            "currency",
            "probability",
            "weighted_amount",
            "expected_close",
            "owner",
            "shared_with",
            "status",
            "closed_at",
            "close_reason",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "closed_at", "close_reason", "created_at", "updated_at"]


class DealMoveSerializer(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects.filter(is_active=True))
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


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


class MergeSerializer(serializers.Serializer):
    loser = serializers.IntegerField(help_text="The id of the record merged into this one (and deleted).")


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


class TaskCompleteSerializer(serializers.Serializer):
    done = serializers.BooleanField(default=True, help_text="true marks the task done, false opens it again.")


class ImportConfigureSerializer(serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Column of the file -> field to import it into (blank: skip the column). Leave out to keep it.",
    )
    duplicates = serializers.ChoiceField(choices=["skip", "update", "merge"], required=False)


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


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "filename",
            "encoding",
            "headers",
            "mapping",
            "duplicates",
            "report",
            "created_at",
            "committed_at",
        ]
        read_only_fields = fields


# --- filters ----------------------------------------------------------------------------------------


class ContactFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Contact
        fields = ["lifecycle", "owner", "company", "source"]

    def filter_tag(self, qs, name, value):
        return qs.filter(tags__contains=[value.lower()])


class DealFilter(django_filters.FilterSet):
    expected_close_before = django_filters.DateFilter(field_name="expected_close", lookup_expr="lte")
    expected_close_after = django_filters.DateFilter(field_name="expected_close", lookup_expr="gte")

    class Meta:
        model = Deal
        fields = ["status", "stage", "owner", "contact", "company", "currency"]


class ActivityFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="completed_at", lookup_expr="isnull")

    class Meta:
        model = Activity
        fields = ["kind", "contact", "company", "deal", "owner"]


# --- viewsets ---------------------------------------------------------------------------------------


def _tenant(request):
    return request.tenant


class CrmViewSet(IdempotentPostMixin, viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, CanWrite]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _fields(self, serializer, *, drop=("shared_with",)):
        data = dict(serializer.validated_data)
        extra = {k: data.pop(k) for k in drop if k in data}
        return data, extra


class ContactSearchFilter(filters.SearchFilter):
    """DRF's ``search`` parameter and its schema; the match is ``selectors.contacts_matching``:
    every term in the name, e-mail, phone or company name, answered by trigram indexes."""

    def filter_queryset(self, request, queryset, view):
        terms = self.get_search_terms(request)
        return selectors.contacts_matching(queryset, terms) if terms else queryset


class DealSearchFilter(filters.SearchFilter):
    """DRF's ``search`` parameter and its schema; the match is ``selectors.deals_matching``: every
    term in the title, the contact's name or the company's name, answered by trigram indexes."""

    def filter_queryset(self, request, queryset, view):
        terms = self.get_search_terms(request)
        return selectors.deals_matching(queryset, terms) if terms else queryset


class ContactViewSet(CrmViewSet):
    """Contacts in the caller's book. Creation checks the plan's contact limit (402)."""

    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    filter_backends = [StrictFilterBackend, ContactSearchFilter, StrictOrderingFilter]
    search_fields = ["first_name", "last_name", "email", "phone", "company__name"]
    ordering_fields = ["last_name", "first_name", "email", "created_at", "updated_at", "lifecycle"]
    ordering = ["last_name", "first_name", "pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Contact.objects.none()
        return access.contacts_for(self.request.user).prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.contact_create(
            actor=self.request.user, tenant=_tenant(self.request), shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer)
        services.contact_update(
            actor=self.request.user, contact=serializer.instance, shared_with=extra.get("shared_with"), **data
        )

    def perform_destroy(self, instance):
        services.contact_delete(actor=self.request.user, contact=instance)

    @extend_schema(request=MergeSerializer, responses=ContactSerializer, summary="Merge another contact into this one")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        survivor = access.contact_for_user(request.user, pk, write=True)
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        loser = access.contact_for_user(request.user, data.validated_data["loser"], write=True)
        survivor = services.contact_merge(actor=request.user, survivor=survivor, loser=loser)
        return Response(ContactSerializer(survivor).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the contacts (filtered) as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        qs = self.filter_queryset(self.get_queryset())
        return exports.csv_response("contacts", exports.contact_rows(qs))


class CompanyViewSet(CrmViewSet):
    serializer_class = CompanySerializer
    filterset_fields = ["owner", "industry"]
    search_fields = ["name", "domain", "industry"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name", "pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Company.objects.none()
        return access.companies_for(self.request.user).prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.company_create(
            actor=self.request.user, shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer)
        services.company_update(
            actor=self.request.user, company=serializer.instance, shared_with=extra.get("shared_with"), **data
        )

    @extend_schema(request=MergeSerializer, responses=CompanySerializer, summary="Merge another company into this one")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        survivor = access.company_for_user(request.user, pk, write=True)
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        loser = access.company_for_user(request.user, data.validated_data["loser"], write=True)
        survivor = services.company_merge(actor=request.user, survivor=survivor, loser=loser)
        return Response(CompanySerializer(survivor).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the companies as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        return exports.csv_response("companies", exports.company_rows(self.filter_queryset(self.get_queryset())))


class DealViewSet(CrmViewSet):
    serializer_class = DealSerializer
    filterset_class = DealFilter
    filter_backends = [StrictFilterBackend, DealSearchFilter, StrictOrderingFilter]
    search_fields = ["title", "contact__first_name", "contact__last_name", "company__name"]
    ordering_fields = ["created_at", "amount", "expected_close", "probability", "title"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Deal.objects.none()
        return access.deals_for(self.request.user).select_related("stage").prefetch_related("shared_with")

    def perform_create(self, serializer):
        data, extra = self._fields(serializer)
        serializer.instance = services.deal_create(
            actor=self.request.user, shared_with=extra.get("shared_with", ()), **data
        )

    def perform_update(self, serializer):
        data, extra = self._fields(serializer, drop=("shared_with", "stage"))
        deal = serializer.instance
        if "stage" in extra:
            deal = services.deal_move(actor=self.request.user, deal=deal, stage=extra["stage"])
        serializer.instance = services.deal_update(
            actor=self.request.user, deal=deal, shared_with=extra.get("shared_with"), **data
        )

    @extend_schema(request=DealMoveSerializer, responses=DealSerializer, summary="Move a deal to another stage")
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        deal = access.deal_for_user(request.user, pk, write=True)
        data = DealMoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal = services.deal_move(actor=request.user, deal=deal, **data.validated_data)
        deal = self.get_queryset().get(pk=deal.pk)
        return Response(DealSerializer(deal).data)

    @extend_schema(responses={(200, "text/csv"): str}, summary="Export the deals as CSV")
    @action(detail=False, methods=["get"])
    def export(self, request):
        return exports.csv_response("deals", exports.deal_rows(self.filter_queryset(self.get_queryset())))


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


class PipelineStageViewSet(CrmViewSet):
    """The firm's pipeline stages: everyone reads; owners, admins and write keys change them."""

    serializer_class = PipelineStageSerializer
    ordering_fields = ["position"]
    ordering = ["position", "pk"]
    filterset_fields = ["kind", "is_active"]
    search_fields = ["name"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PipelineStage.objects.none()
        services.pipeline_stages_ensure()
        return PipelineStage.objects.all()

    def perform_create(self, serializer):
        serializer.instance = services.pipeline_stage_save(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        services.pipeline_stage_save(actor=self.request.user, stage=serializer.instance, **serializer.validated_data)


class SearchHitSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField(source="pk")
    title = serializers.CharField()
    subtitle = serializers.CharField()
    url = serializers.CharField(
        help_text="Path of the record's page on the firm's web host (the same on the API host)."
    )
    score = serializers.FloatField()


class SearchView(IdempotentPostMixin, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ],
        responses=inline_serializer("SearchResults", {"results": SearchHitSerializer(many=True)}),
        summary="Search contacts, companies and deals (full text + typo-tolerant names)",
    )
    def get(self, request):
        if "q" not in request.query_params:
            raise ValidationError({"q": ["Give the text to search for."]})
        q = request.query_params["q"]
        raw = request.query_params.get("limit", "20")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            raise ValidationError({"limit": ["Use a whole number from 1 to 100."]})
        limit = int(raw)
        hits = selectors.crm_search(request.user, q, limit)
        return Response({"results": SearchHitSerializer(hits, many=True).data})


class ClientRecordView(IdempotentPostMixin, APIView):
    """One client: portfolios with value and returns, last activity, open deals, newsletter status,
    open tasks and the timeline."""

    @extend_schema(responses=inline_serializer("ClientRecord", {"contact": ContactSerializer()}))
    def get(self, request, pk: int):
        contact = access.contact_for_user(
            request.user, pk, queryset=access.contacts_for(request.user).select_related("company")
        )
        record = selectors.client_record(user=request.user, contact=contact)

        def money(v):
            return None if v is None else str(v)

        return Response(
            {
                "contact": ContactSerializer(contact).data,
                "portfolios": [
                    {
                        "id": f.portfolio.pk,
                        "name": f.portfolio.name,
                        "currency": f.currency,
                        "value": money(f.value),
                        "twr": money(f.twr),
                        "mwr": money(f.mwr),
                        "error": f.error,
                    }
                    for f in record.portfolios
                ],
                "aum": {cur: str(v) for cur, v in record.aum.items()},
                "last_activity": ActivitySerializer(record.last_activity).data if record.last_activity else None,
                "open_deals": DealSerializer(record.open_deals, many=True).data,
                "open_tasks": ActivitySerializer(record.open_tasks, many=True).data,
                "newsletter_status": record.newsletter_status,
                "timeline": [
                    {"at": i.at.isoformat(), "kind": i.kind, "title": i.title, "detail": i.detail, "url": i.url}
                    for i in record.timeline
                ],
            }
        )


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


class ImportViewSet(IdempotentPostMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """CSV imports: upload (multipart ``file`` + ``kind``) -> mapping and preview -> commit."""

    serializer_class = ImportJobSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-pk"]
    search_fields = ["filename"]

    def get_parsers(self):
        # The upload is multipart; every other body of this resource is JSON, as everywhere. DRF
        # picks the parsers before it sets ``action``: the route's POST action tells them apart.
        action = getattr(self, "action", None) or getattr(self, "action_map", {}).get("post")
        return [MultiPartParser()] if action == "create" else [BoundedJSONParser()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        return access.imports_for(self.request.user).defer("rows")

    def _preview_body(self, job, preview, limit: int = 200):
        return ImportJobSerializer(job).data | {
            "preview": {
                "counts": preview.counts,
                "errors": [e.__dict__ for e in preview.errors[:1000]],
                "rows": [
                    {
                        "row": r.row,
                        "action": r.action,
                        "values": {k: str(v) for k, v in r.values.items() if not k.startswith("__")},
                    }
                    for r in preview.rows[:limit]
                ],
            }
        }

    @extend_schema(
        request={
            "multipart/form-data": OpenApiRequest(
                inline_serializer(
                    "ImportUpload",
                    {
                        "file": serializers.FileField(help_text="A CSV file (.csv or .txt) with a header row."),
                        "kind": serializers.ChoiceField(choices=["contacts", "companies"]),
                    },
                ),
                # what the upload check (codex.uploads) accepts: a .csv name, a CSV content type
                encoding={
                    "file": {
                        "contentType": "text/csv",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "example": 'form-data; name="file"; filename="contacts.csv"',
                                }
                            }
                        },
                    }
                },
            )
        },
        responses={201: ImportJobSerializer},
    )
    def create(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Attach a CSV file."})
        try:
            job = services.import_start(
                actor=request.user, tenant=_tenant(request), kind=request.data.get("kind", "contacts"), upload=upload
            )
        except engine.ImportFileError as exc:
            raise ValidationError({"file": str(exc)}) from exc
        preview = self._configure(job)
        return Response(self._preview_body(job, preview), status=status.HTTP_201_CREATED)

    def _configure(self, job, **changes):
        try:
            return services.import_configure(actor=self.request.user, job=job, **changes)
        except services.StateConflict:
            raise  # a finished import: 409 (codex.api.errors maps it), not a field error
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc

    def retrieve(self, request, *args, **kwargs):
        job = access.import_for_user(request.user, kwargs["pk"])
        if job.status != "pending":
            return Response(ImportJobSerializer(job).data)
        if not access.can_write(request.user):
            return Response(ImportJobSerializer(job).data)
        try:
            preview = services.import_configure(actor=request.user, job=job)
        except DjangoValidationError as exc:
            # The mapping is not usable yet: show the job and what to fix (POST .../preview/).
            return Response(ImportJobSerializer(job).data | {"mapping_errors": exc.message_dict.get("mapping", [])})
        return Response(self._preview_body(job, preview))

    @extend_schema(
        request=ImportConfigureSerializer,
        responses=ImportJobSerializer,
        summary="Set the column mapping / duplicates mode and get the preview",
        description="`mapping` maps the file's columns (as in the job's `headers`) to the kind's fields; "
        "the required fields (a contact's first name, a company's name) must each get a column, or it is a "
        "400 naming `mapping` (the columns are the file's, so no schema can list them). A finished import "
        "is a 409.",
        examples=[
            OpenApiExample(
                "Map the columns",
                value={"mapping": {"First Name": "first_name", "E-mail": "email", "Notes": ""}, "duplicates": "merge"},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        job = access.import_for_user(request.user, pk, write=True)
        data = ImportConfigureSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preview = self._configure(
            job, mapping=data.validated_data.get("mapping"), duplicates=data.validated_data.get("duplicates")
        )
        return Response(self._preview_body(job, preview))

    @extend_schema(request=None, responses=ImportJobSerializer, summary="Import everything or nothing")
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        job = access.import_for_user(request.user, pk, write=True)
        try:
            services.import_commit(actor=request.user, tenant=_tenant(request), job=job)
        except engine.ImportRejected as exc:
            raise ValidationError({"rows": [f"row {e.row}, {e.field}: {e.message}" for e in exc.errors[:200]]}) from exc
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data)
