"""Custodian files and reconciliation API (docs/custodian.md). Imports, mappings, accounts and
runs are the firm managers'; breaks are read by members within their book and resolved by writers."""

from __future__ import annotations

from decimal import Decimal

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex import imports as engine
from codex.api.errors import envelope_response
from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite, IsFirmManager

from . import corporate_actions, custodian, services
from .access import portfolio_for_user, portfolios_visible_to
from .models import (
    BreakStatus,
    CustodianAccount,
    CustodianMapping,
    LedgerSettings,
    NegativeCash,
    Portfolio,
    ReconciliationBreak,
)


def _rows(errors) -> list[dict]:
    return [{"row": e.row, "field": e.field, "message": e.message} for e in errors]


class PositionsImportInput(serializers.Serializer):
    custodian = serializers.SlugField(max_length=64)
    file = serializers.FileField()
    commit = serializers.BooleanField(default=False, help_text="false: preview; true: write all rows or none.")


class PositionsImportView(IdempotentPostMixin, APIView):
    """A custodian's positions file: preview (per-row errors) or commit, all or nothing."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, IsFirmManager]

    @extend_schema(request={"multipart/form-data": PositionsImportInput}, responses={200: dict, 201: dict})
    def post(self, request):
        data = PositionsImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        custodian_name, upload = data.validated_data["custodian"], data.validated_data["file"]
        try:
            if not data.validated_data["commit"]:
                return Response(
                    {
                        "committed": False,
                        **custodian.positions_preview(custodian=custodian_name, upload=upload).as_dict(),
                    }
                )
            result = custodian.positions_import(custodian=custodian_name, upload=upload, actor=request.user.email)
        except engine.ImportFileError as exc:
            return envelope_response(400, "invalid", str(exc), {"file": [str(exc)]})
        except engine.ImportRejected as exc:
            return envelope_response(400, "import_rejected", str(exc), {"rows": _rows(exc.errors)})
        return Response({"committed": True, **result.as_dict()}, status=status.HTTP_201_CREATED)


class TransactionsImportView(IdempotentPostMixin, APIView):
    """A custodian's transactions file into one portfolio's ledger, deduplicated by the custodian's
    transaction id: preview or commit, all or nothing."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, CanWrite]

    @extend_schema(request={"multipart/form-data": PositionsImportInput}, responses={200: dict, 201: dict})
    def post(self, request, portfolio_pk):
        portfolio = portfolio_for_user(request.user, portfolio_pk, write=True)
        data = PositionsImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = custodian.transactions_import(
                portfolio=portfolio,
                custodian=data.validated_data["custodian"],
                upload=data.validated_data["file"],
                created_by=request.user,
            )
            if not data.validated_data["commit"]:
                preview = job.preview()
                counts = {
                    "new": preview.counts["create"],
                    "duplicates": preview.counts["skip"],
                    "errors": preview.counts["error"],
                }
                return Response({"committed": False, "counts": counts, "errors": _rows(preview.errors)})
            report = custodian.transactions_commit(
                job=job, custodian_name=data.validated_data["custodian"], actor=request.user.email
            )
        except engine.ImportFileError as exc:
            return envelope_response(400, "invalid", str(exc), {"file": [str(exc)]})
        except engine.ImportRejected as exc:
            return envelope_response(400, "import_rejected", str(exc), {"rows": _rows(exc.errors)})
        counts = {"new": report.created, "duplicates": report.skipped, "errors": 0}
        return Response({"committed": True, "counts": counts, "errors": []}, status=status.HTTP_201_CREATED)


class TransactionsByAccountImportView(IdempotentPostMixin, APIView):
    """A custodian's transactions file with an account column: each row is booked into the
    portfolio linked to its account (``/custodian/accounts/``); an account not linked is an error on
    its row. Preview or commit, all or nothing over every portfolio."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, IsFirmManager]

    @extend_schema(request={"multipart/form-data": PositionsImportInput}, responses={200: dict, 201: dict})
    def post(self, request):
        data = PositionsImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            job = custodian.transactions_import_by_account(
                custodian=data.validated_data["custodian"], upload=upload, created_by=request.user
            )
            if not data.validated_data["commit"]:
                return Response({"committed": False, **job.preview().as_dict()})
            result = job.commit(actor=request.user.email, filename=upload.name)
        except engine.ImportFileError as exc:
            return envelope_response(400, "invalid", str(exc), {"file": [str(exc)]})
        except engine.ImportRejected as exc:
            return envelope_response(400, "import_rejected", str(exc), {"rows": _rows(exc.errors)})
        return Response({"committed": True, **result.as_dict()}, status=status.HTTP_201_CREATED)


class MappingSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustodianMapping
        fields = ["id", "custodian", "kind", "columns", "date_format"]


class MappingViewSet(IdempotentPostMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Saved column mappings per custodian (POST replaces the custodian's mapping of that kind)."""

    serializer_class = MappingSerializer
    permission_classes = [IsAuthenticated, IsFirmManager]
    ordering = ["custodian", "kind"]
    ordering_fields = ["custodian"]
    search_fields = ["custodian"]
    queryset = CustodianMapping.objects.all()

    def perform_create(self, serializer):
        serializer.instance = custodian.mapping_save(
            custodian=serializer.validated_data["custodian"],
            kind=serializer.validated_data["kind"],
            columns=serializer.validated_data.get("columns") or {},
            date_format=serializer.validated_data.get("date_format") or "%Y-%m-%d",
        )


class AccountSerializer(serializers.ModelSerializer):
    portfolio = serializers.PrimaryKeyRelatedField(queryset=Portfolio.objects.all())

    class Meta:
        model = CustodianAccount
        fields = ["id", "custodian", "account", "portfolio"]


class AccountViewSet(IdempotentPostMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Which portfolio each custodian account number is."""

    serializer_class = AccountSerializer
    permission_classes = [IsAuthenticated, IsFirmManager]
    ordering = ["custodian", "account"]
    ordering_fields = ["custodian", "account"]
    search_fields = ["account"]
    queryset = CustodianAccount.objects.all()


class RunInput(serializers.Serializer):
    as_of = serializers.DateField()
    tolerance = serializers.DecimalField(max_digits=28, decimal_places=10, required=False, min_value=0)


class ReconciliationRunView(IdempotentPostMixin, APIView):
    """Reconcile every portfolio with custodian positions on ``as_of``; returns the counts."""

    permission_classes = [IsAuthenticated, IsFirmManager]

    @extend_schema(request=RunInput, responses={200: dict})
    def post(self, request):
        data = RunInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = custodian.reconcile(
            as_of=data.validated_data["as_of"], tolerance=data.validated_data.get("tolerance"), actor=request.user.email
        )
        return Response(
            {
                "as_of": result.as_of,
                "portfolios": result.portfolios,
                "lines": result.lines,
                "open_breaks": result.breaks,
                "closed": result.closed,
            }
        )


class BreakSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", read_only=True, default=None)
    proposed_adjustment = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationBreak
        fields = [
            "id", "portfolio", "as_of", "instrument", "symbol", "currency", "ledger_quantity", "custodian_quantity",
            "difference", "value", "status", "note", "adjustment", "resolved_at", "proposed_adjustment",
        ]  # fmt: skip

    def get_proposed_adjustment(self, obj) -> dict | None:
        if obj.status != BreakStatus.OPEN:
            return None
        return {k: (str(v) if v is not None else None) for k, v in custodian.proposed_adjustment(obj).items()}


class ResolveInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["adjust", "explain"])
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BreakFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BreakStatus.choices)
    as_of = django_filters.DateFilter()

    class Meta:
        model = ReconciliationBreak
        fields = ["status", "as_of", "portfolio"]


class BreakViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """Reconciliation breaks of the portfolios the caller may read; ``resolve`` books the proposed
    adjusting transaction (``adjust``) or records an explanation (``explain`` with a note)."""

    serializer_class = BreakSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_class = BreakFilter
    ordering = ["-as_of", "portfolio", "id"]
    ordering_fields = ["as_of", "difference", "value"]
    search_fields = ["instrument__symbol", "note"]

    def get_queryset(self):
        return ReconciliationBreak.objects.filter(
            portfolio__in=portfolios_visible_to(self.request.user)
        ).select_related("instrument")

    @extend_schema(request=ResolveInput, responses={200: BreakSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        brk = self.get_object()  # DRF's lookup: an id that is not a number is a 404, not a 500
        portfolio_for_user(request.user, brk.portfolio_id, write=True)
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        brk = custodian.break_resolve(
            brk=brk, action=data.validated_data["action"], note=data.validated_data["note"], user=request.user
        )
        return Response(BreakSerializer(brk).data)


class DecideInput(serializers.Serializer):
    action = serializers.IntegerField()
    portfolio = serializers.IntegerField()
    accept = serializers.BooleanField()


class CorporateActionsView(IdempotentPostMixin, APIView):
    """GET: corporate actions the feed proposed for the caller's portfolios (pending ledger
    entries, with the row accepting would book). POST ``{action, portfolio, accept}``: book it or
    dismiss it."""

    permission_classes = [IsAuthenticated, CanWrite]

    @extend_schema(responses={200: dict})
    def get(self, request):
        items = corporate_actions.pending_for(request.user)
        return Response(
            {
                "results": [
                    {
                        "action": p.action.pk,
                        "portfolio": p.portfolio.pk,
                        "instrument": p.action.instrument_id,
                        "symbol": p.action.instrument.symbol,
                        "kind": p.action.kind,
                        "date": p.action.date,
                        "value": str(p.action.value),
                        "quantity_held": f"{p.quantity.normalize():f}",
                        "proposed": {k: str(v) for k, v in p.proposed().items()},
                    }
                    for p in items
                ]
            }
        )

    @extend_schema(request=DecideInput, responses={201: dict})
    def post(self, request):
        data = DecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        decision = corporate_actions.decide(
            user=request.user,
            action_id=data.validated_data["action"],
            portfolio_id=data.validated_data["portfolio"],
            accept=data.validated_data["accept"],
        )
        return Response(
            {"decision": decision.decision, "transaction": decision.transaction_id}, status=status.HTTP_201_CREATED
        )


class LedgerSettingsSerializer(serializers.Serializer):
    negative_cash = serializers.ChoiceField(
        choices=NegativeCash.choices,
        help_text="What a write that takes a cash balance below zero does: warn (keep it, shown in red) or refuse.",
    )
    reconciliation_tolerance = serializers.DecimalField(
        max_digits=28,
        decimal_places=10,
        min_value=Decimal(0),
        help_text="Reconciliation differences up to this many units (or cash) are not breaks.",
    )


class LedgerSettingsPatch(LedgerSettingsSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            f.required = False


class LedgerSettingsView(APIView):
    """The firm's ledger rules. Every member reads them; owners and admins change them (PATCH)."""

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), IsFirmManager()]

    @extend_schema(responses={200: LedgerSettingsSerializer})
    def get(self, request):
        return Response(LedgerSettingsSerializer(LedgerSettings.current()).data)

    @extend_schema(request=LedgerSettingsPatch, responses={200: LedgerSettingsSerializer})
    def patch(self, request):
        data = LedgerSettingsPatch(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.ledger_settings_update(
            negative_cash=data.validated_data.get("negative_cash"),
            reconciliation_tolerance=data.validated_data.get("reconciliation_tolerance"),
            actor=request.user.email,
        )
        return Response(LedgerSettingsSerializer(row).data)
