"""A portfolio's ledger: transactions, their CSV import and export, the holdings export, lots."""

from __future__ import annotations

from datetime import date

import django_filters
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import check_feature
from codex import imports as engine
from codex.api.errors import envelope_response
from codex.api.fields import CurrencyField
from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite

from .. import analytics, selectors, services
from ..access import portfolio_for_user
from ..imports import TransactionImport, export_holdings, export_transactions
from ..models import TRANSACTION_FIELDS, Kind, Lot, Portfolio, Transaction

# The ledger fields, with the instrument's symbol shown beside the instrument.
_AFTER_INSTRUMENT = TRANSACTION_FIELDS.index("instrument") + 1


class TransactionSerializer(serializers.ModelSerializer):
    instrument_symbol = serializers.CharField(source="instrument.symbol", read_only=True, allow_null=True)

    class Meta:
        model = Transaction
        fields = [
            "id",
            "portfolio",
            *TRANSACTION_FIELDS[:_AFTER_INSTRUMENT],
            "instrument_symbol",
            *TRANSACTION_FIELDS[_AFTER_INSTRUMENT:],
            "fingerprint",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LotPickSerializer(serializers.Serializer):
    lot = serializers.IntegerField(help_text="Id of the buy (or transfer in) that opened the lot.")
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10)


# Years 1900 and later: the schema's statement of ``analytics.EARLIEST_DATE`` (JSON Schema has no
# minimum for a date; "not after today" is in the description, checked by the field).
LEDGER_DATE_PATTERN = r"^(19[0-9]{2}|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$"
LEDGER_DATE_SCHEMA = {"type": "string", "format": "date", "pattern": LEDGER_DATE_PATTERN}


@extend_schema_field(LEDGER_DATE_SCHEMA)
class LedgerDateField(serializers.DateField):
    """A date of the ledger: from ``analytics.EARLIEST_DATE`` to today (the firm's time zone)."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text", f"From {analytics.EARLIEST_DATE.isoformat()} to today (inclusive), as YYYY-MM-DD."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        message = services.date_range_error(day, today=timezone.localdate())
        if message:
            raise serializers.ValidationError(message)
        return day


# The rules across fields that a JSON Schema of this body cannot state (they depend on the kind, on
# the instrument's currency, on the FX rates and lots stored), each a 400 naming the field.
LEDGER_RULES = (
    "Record one ledger row; holdings and lots are rebuilt in the same transaction. Rules by kind "
    "(each broken rule is a 400 naming the field): **buy, sell** need `instrument`, `quantity` > 0 "
    "and `price` > 0, no `amount`; a sell cannot exceed the quantity held and may name `lots` "
    "adding up to it. **split, transfer_in, transfer_out** need `instrument` and `quantity` > 0, no "
    "`fees`; only a transfer in has `acquired_on` (not after `trade_date`). **dividend, interest, "
    "fee, tax, deposit, withdrawal** need `amount` > 0 (or `quantity` and `price`); only dividends "
    "and the like may name an instrument. `currency` defaults to the instrument's (which it must "
    "match) or the portfolio's base currency; another currency needs `fx_rate` when no rate is "
    "stored for `trade_date`. Dates from 1900-01-01 to today."
)
LEDGER_EXAMPLES = [
    OpenApiExample(
        "A deposit", value={"kind": "deposit", "trade_date": "2024-01-02", "amount": "1000"}, request_only=True
    ),
]


class TransactionInputSerializer(serializers.Serializer):
    """Types only; the rules (and their field errors) live in ``services.transaction_clean``."""

    kind = serializers.ChoiceField(choices=Kind.choices)
    trade_date = LedgerDateField()
    instrument = serializers.IntegerField(required=False, allow_null=True)
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10, required=False)
    price = serializers.DecimalField(max_digits=24, decimal_places=6, required=False)
    fees = serializers.DecimalField(max_digits=24, decimal_places=6, required=False)
    amount = serializers.DecimalField(max_digits=24, decimal_places=6, required=False, allow_null=True)
    currency = CurrencyField(required=False, allow_blank=True)
    fx_rate = serializers.DecimalField(max_digits=24, decimal_places=10, required=False, allow_null=True)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    lots = LotPickSerializer(many=True, required=False, allow_null=True)
    acquired_on = LedgerDateField(required=False, allow_null=True)
    counter_currency = CurrencyField(
        required=False,
        allow_blank=True,
        help_text="Conversion: the currency bought. Buy/sell: the currency whose cash pays or receives.",
    )
    counter_amount = serializers.DecimalField(max_digits=24, decimal_places=6, required=False, allow_null=True)

    def to_service(self) -> dict:
        data = dict(self.validated_data)
        if data.get("lots"):
            data["lots"] = [{"lot": x["lot"], "quantity": str(x["quantity"])} for x in data["lots"]]
        return data


class TransactionFilter(django_filters.FilterSet):
    start = django_filters.DateFilter(field_name="trade_date", lookup_expr="gte")
    end = django_filters.DateFilter(field_name="trade_date", lookup_expr="lte")
    kind = django_filters.MultipleChoiceFilter(choices=Kind.choices)

    class Meta:
        model = Transaction
        fields = ["kind", "instrument", "currency", "start", "end"]


class PortfolioScopedMixin(APIView):
    """Resolves ``portfolio_pk`` from the URL through the access helper, once per request (a view
    instance serves one request)."""

    permission_classes = [IsAuthenticated, CanWrite]
    _portfolio: Portfolio | None = None

    def portfolio(self, *, write: bool = False) -> Portfolio:
        if self._portfolio is None:
            self._portfolio = portfolio_for_user(self.request.user, self.kwargs["portfolio_pk"], write=write)
        return self._portfolio


class TransactionViewSet(IdempotentPostMixin, PortfolioScopedMixin, viewsets.ModelViewSet):
    """The ledger of one portfolio. Every write rebuilds holdings and lots in the same transaction."""

    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    search_fields = ["note", "instrument__symbol", "instrument__name"]
    ordering_fields = ["trade_date", "id", "kind", "created_at"]
    ordering = ["-trade_date", "-id"]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        write = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return selectors.transactions_of(portfolio=self.portfolio(write=write))

    @extend_schema(
        request=TransactionInputSerializer,
        responses={201: TransactionSerializer},
        description=LEDGER_RULES,
        examples=LEDGER_EXAMPLES,
    )
    def create(self, request, *args, **kwargs):
        portfolio = self.portfolio(write=True)
        data = TransactionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        txn = services.transaction_record(portfolio=portfolio, created_by=request.user, **data.to_service())
        return Response(TransactionSerializer(self.get_queryset().get(pk=txn.pk)).data, status=201)

    @extend_schema(request=TransactionInputSerializer, responses=TransactionSerializer)
    def update(self, request, *args, **kwargs):
        txn = self.get_object()
        data = TransactionInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        txn = services.transaction_update(txn=txn, **data.to_service())
        return Response(TransactionSerializer(self.get_queryset().get(pk=txn.pk)).data)

    def destroy(self, request, *args, **kwargs):
        services.transaction_delete(txn=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV in the format of docs/portfolios.md.")
    commit = serializers.BooleanField(default=False, help_text="false: preview only; true: write all rows or none.")


class TransactionImportView(IdempotentPostMixin, PortfolioScopedMixin, APIView):
    """CSV import into the ledger: preview (default) or commit, all or nothing."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": OpenApiRequest(
                ImportInputSerializer,
                # what the upload check (codex.uploads) accepts: a .csv name, a CSV content type
                encoding={
                    "file": {
                        "contentType": "text/csv",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "example": 'form-data; name="file"; filename="transactions.csv"',
                                }
                            }
                        },
                    }
                },
            )
        },
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The preview (`commit` false)."),
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="Committed: every row written (`commit` true)."),
        },
        summary="Import transactions from CSV: preview with per-row errors, or commit all or nothing",
    )
    def post(self, request, portfolio_pk):
        portfolio = self.portfolio(write=True)
        check_feature(tenant=request.tenant, feature="imports")
        data = ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = TransactionImport.from_upload(
                portfolio=portfolio, upload=data.validated_data["file"], created_by=request.user
            )
        except engine.ImportFileError as exc:
            raise ValidationError({"file": str(exc)}) from exc

        def rows_payload(errors):
            return [{"row": e.row, "field": e.field, "message": e.message} for e in errors]

        if not data.validated_data["commit"]:
            preview = job.preview()
            return Response(
                {
                    "committed": False,
                    "counts": {
                        "new": preview.counts["create"],
                        "duplicates": preview.counts["skip"],
                        "errors": preview.counts["error"],
                    },
                    "errors": rows_payload(preview.errors),
                }
            )
        try:
            report = job.commit()
        except engine.ImportRejected as exc:
            return envelope_response(400, "import_rejected", str(exc), {"rows": rows_payload(exc.errors)})
        return Response(
            {
                "committed": True,
                "counts": {"new": report.created, "duplicates": report.skipped, "errors": 0},
                "errors": [],
            },
            status=201,
        )


class TransactionExportView(IdempotentPostMixin, PortfolioScopedMixin, APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR}, summary="The ledger as CSV (import format)")
    def get(self, request, portfolio_pk):
        portfolio = self.portfolio()
        response = StreamingHttpResponse(export_transactions(portfolio), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transactions-{portfolio.pk}.csv"'
        return response


class HoldingsExportView(IdempotentPostMixin, PortfolioScopedMixin, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("date", LEDGER_DATE_SCHEMA, description="1900-01-01 to today; default today.")],
        responses={(200, "text/csv"): OpenApiTypes.STR},
        summary="Holdings and cash as CSV",
    )
    def get(self, request, portfolio_pk):
        snapshot, infos = selectors.portfolio_holdings(portfolio=self.portfolio(), on=_date_param(request, "date"))
        response = StreamingHttpResponse(export_holdings(snapshot, infos), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="holdings-{snapshot.date}.csv"'
        return response


class LotSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="opened_by_id", help_text="The lot id: the transaction that opened it.")
    instrument = serializers.IntegerField(source="instrument_id")
    instrument_symbol = serializers.CharField(source="instrument.symbol")
    acquired_on = serializers.DateField()
    original_quantity = serializers.DecimalField(max_digits=28, decimal_places=10)
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10)
    currency = serializers.CharField()
    cost_local = serializers.DecimalField(max_digits=30, decimal_places=10)
    cost_base = serializers.DecimalField(max_digits=30, decimal_places=10)
    closed_on = serializers.DateField(allow_null=True)
    status = serializers.SerializerMethodField()

    def get_status(self, obj) -> str:
        return "open" if obj.quantity > 0 else "closed"


LOT_STATUS_CHOICES = [("open", "Open"), ("closed", "Closed")]


class LotFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LOT_STATUS_CHOICES, method="by_status")

    class Meta:
        model = Lot
        fields = ["instrument", "status"]

    def by_status(self, qs, name, value):
        return qs.filter(quantity__gt=0) if value == "open" else qs.filter(quantity=0)


class LotViewSet(IdempotentPostMixin, PortfolioScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Tax lots of a portfolio (derived from the ledger): open and closed."""

    serializer_class = LotSerializer
    filterset_class = LotFilter
    search_fields = ["instrument__symbol"]
    ordering_fields = ["acquired_on", "opened_by", "quantity", "cost_base"]
    ordering = ["acquired_on", "opened_by"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Lot.objects.none()
        return selectors.lots_of(portfolio=self.portfolio())


def _date_param(request, name: str) -> date:
    """A ``YYYY-MM-DD`` query parameter, not in the future; today when absent."""
    today = timezone.localdate()
    raw = request.query_params.get(name)
    if raw is None:
        return today
    try:
        day = date.fromisoformat(raw)  # "" is refused too: absent means today
    except ValueError as exc:
        raise ValidationError({name: "Enter a date as YYYY-MM-DD."}) from exc
    if day > today:
        raise ValidationError({name: "The date is in the future."})
    if day < analytics.EARLIEST_DATE:
        raise ValidationError({name: f"The date must be on or after {analytics.EARLIEST_DATE.isoformat()}."})
    return day
