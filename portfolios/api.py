"""Portfolios API: portfolios, their ledger, holdings, lots, performance, allocation, value series,
and the firm-wide exposure. Thin: input serializers parse, services and selectors do the work,
``portfolios.access`` scopes every query (docs/portfolios.md).

Over 600 lines because each endpoint's input serializer, OpenAPI description (the rules a JSON
Schema cannot state) and viewset sit together: portfolios, the ledger, analytics.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
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
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import check_feature
from codex import imports as engine
from codex.api.errors import Conflict, envelope_response
from codex.api.fields import CurrencyField
from codex.api.filters import refuse_empty_params
from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite
from crm.models import Contact
from portfolios.market.models import Instrument
from tenants.accounts.models import User

from . import analytics, selectors, services, valuations
from .access import portfolio_for_user, sees_whole_firm
from .imports import TransactionImport, export_holdings, export_transactions
from .models import TRANSACTION_FIELDS, Kind, Lot, LotMethod, Portfolio, Transaction

# --------------------------------------------------------------------------------------------
# Portfolios
# --------------------------------------------------------------------------------------------


class PortfolioSerializer(serializers.ModelSerializer):
    client_name = serializers.SerializerMethodField()
    advisor_email = serializers.EmailField(source="advisor.email", read_only=True)
    benchmark_symbol = serializers.CharField(source="benchmark.symbol", read_only=True, allow_null=True)
    shared_with = serializers.SerializerMethodField()

    class Meta:
        model = Portfolio
        fields = [
            "id",
            "name",
            "client",
            "client_name",
            "advisor",
            "advisor_email",
            "base_currency",
            "benchmark",
            "benchmark_symbol",
            "lot_method",
            "shared_with",
            "archived",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_client_name(self, obj) -> str | None:
        return str(obj.client) if obj.client_id else None

    def get_shared_with(self, obj) -> list[int]:
        ids = getattr(obj, "shared_with_ids", None)
        if ids is not None:
            return list(ids)
        return sorted(u.pk for u in obj.shared_with.all())


class PortfolioInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    client = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), allow_null=True, required=False)
    advisor = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    base_currency = CurrencyField(required=False, default="USD")
    benchmark = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all(), allow_null=True, required=False)
    lot_method = serializers.ChoiceField(choices=LotMethod.choices, required=False, default=LotMethod.FIFO)
    shared_with = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), many=True, required=False
    )
    archived = serializers.BooleanField(required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and not sees_whole_firm(user):
            # an advisor can only name clients in their book; others look non-existent
            self.fields["client"].queryset = Contact.objects.filter(
                Q(owner_id=user.pk) | Q(shared_with=user.pk)
            ).distinct()


class PortfolioCreateSchemaSerializer(PortfolioInputSerializer):
    """The create body as documented: ``advisor`` is required of API keys, which act for the firm
    and have no book of their own (a signed-in user who leaves it out advises the portfolio)."""

    advisor = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        help_text="The portfolio's advisor. Required with an API key; a signed-in user may leave it "
        "out to be the advisor.",
    )


class PortfolioFilter(django_filters.FilterSet):
    base_currency = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Portfolio
        fields = ["archived", "advisor", "client", "base_currency", "benchmark"]


class PortfolioViewSet(IdempotentPostMixin, viewsets.ModelViewSet):
    """Portfolios in the caller's book (advisors) or the whole firm (owners, admins, viewers, keys):
    ``selectors.portfolio_list`` read through ``PortfolioSerializer``, list and detail alike."""

    serializer_class = PortfolioSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_class = PortfolioFilter
    search_fields = ["name", "client__first_name", "client__last_name"]
    ordering_fields = ["name", "created_at", "id", "base_currency"]
    ordering = ["name", "id"]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Portfolio.objects.none()
        return selectors.portfolio_list(user=self.request.user)

    def get_object(self):
        write = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return portfolio_for_user(self.request.user, self.kwargs["pk"], write=write, queryset=self.get_queryset())

    @extend_schema(request=PortfolioCreateSchemaSerializer, responses={201: PortfolioSerializer})
    def create(self, request, *args, **kwargs):
        data = PortfolioInputSerializer(data=request.data, user=request.user)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        advisor = v.get("advisor") or (request.user if request.user.pk else None)
        if advisor is None:
            raise ValidationError({"advisor": "An API key acts for the firm: name the advisor."})
        portfolio = services.portfolio_create(
            tenant=request.tenant,
            actor=request.user,
            name=v["name"],
            advisor=advisor,
            client=v.get("client"),
            base_currency=v["base_currency"],
            benchmark=v.get("benchmark"),
            lot_method=v["lot_method"],
            shared_with=v.get("shared_with", ()),
        )
        return Response(PortfolioSerializer(self.get_queryset().get(pk=portfolio.pk)).data, status=201)

    @extend_schema(request=PortfolioInputSerializer, responses=PortfolioSerializer)
    def update(self, request, *args, **kwargs):
        portfolio = self.get_object()
        data = PortfolioInputSerializer(data=request.data, partial=kwargs.get("partial", False), user=request.user)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if not kwargs.get("partial"):
            changes.pop("archived", None)
        services.portfolio_update(portfolio=portfolio, actor=request.user, **changes)
        return Response(PortfolioSerializer(self.get_queryset().get(pk=portfolio.pk)).data)

    def destroy(self, request, *args, **kwargs):
        portfolio = self.get_object()
        try:
            services.portfolio_delete(portfolio=portfolio)
        except ValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="portfolio_has_ledger") from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------


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


class PortfolioScopedMixin:
    """Resolves ``portfolio_pk`` from the URL through the access helper, once per request."""

    permission_classes = [IsAuthenticated, CanWrite]

    def portfolio(self, *, write: bool = False) -> Portfolio:
        if getattr(self, "_portfolio", None) is None:
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


# --------------------------------------------------------------------------------------------
# Analytics
# --------------------------------------------------------------------------------------------


def _d(x):
    """Decimals as exact strings without trailing zeros ("990", not "990.0000000000")."""
    return None if x is None else f"{x.normalize():f}"


MONEY_PLACES = 6
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)


def _money(x):
    """An amount converted between currencies, to the ``MONEY_PLACES`` decimals its schema states
    (half-even), without trailing zeros: a converted sum has as many decimals as the rates'
    product (the exposure's ``total_value`` had 16, its schema says 6)."""
    return None if x is None else _d(x.quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_EVEN))


def _ret(r: analytics.PeriodReturn | None):
    if r is None:
        return None
    return {
        "base_date": r.base_date,
        "end": r.end,
        "cumulative": _d(r.cumulative),
        "annualised": _d(r.annualised),
        "value": _d(r.value),
    }


RANGE_PARAMS = [
    OpenApiParameter(
        "start", LEDGER_DATE_SCHEMA, description="First day of the range (inclusive), 1900-01-01 or later."
    ),
    OpenApiParameter("end", LEDGER_DATE_SCHEMA, description="Last day (inclusive), not after today; default today."),
    OpenApiParameter(
        "preset",
        OpenApiTypes.STR,
        enum=list(analytics.PRESETS),
        description="Instead of dates: with `start` or `end` it is a 400 naming `preset` "
        "(OpenAPI cannot state that two query parameters exclude each other).",
    ),
]


class PortfolioAnalyticsView(IdempotentPostMixin, PortfolioScopedMixin, APIView):
    pass


class HoldingsView(PortfolioAnalyticsView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "date", LEDGER_DATE_SCHEMA, description="Valuation date, 1900-01-01 to today; default today."
            )
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Positions with market value, cost and unrealised gain (per lot too), and cash",
    )
    def get(self, request, portfolio_pk):
        on = _date_param(request, "date")
        snap, infos = selectors.portfolio_holdings(portfolio=self.portfolio(), on=on)
        return Response(holdings_payload(snap, infos))


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


def _return_split_fields(h) -> dict:
    """The unrealised gain split into price and currency effects (docs/analytics.md)."""
    split = analytics.return_split(
        cost_local=h.cost_local, cost_base=h.cost_base, value_local=h.market_value_local, fx_now=h.fx_rate
    )
    return {
        "price_effect_base": _d(split.price_effect),
        "currency_effect_base": _d(split.currency_effect),
        "price_return": _d(split.price_return) if split.price_return is not None else None,
        "currency_return": _d(split.currency_return) if split.currency_return is not None else None,
    }


def holdings_payload(snap: analytics.HoldingsSnapshot, infos: dict) -> dict:
    rows = []
    for h in sorted(snap.holdings, key=lambda h: -h.market_value_base):
        info = infos.get(h.instrument_id)
        rows.append(
            {
                "instrument": h.instrument_id,
                "symbol": info.symbol if info else None,
                "name": info.name if info else None,
                "currency": h.currency,
                "quantity": _d(h.quantity),
                "price": _d(h.price),
                "fx_rate": _d(h.fx_rate),
                "market_value_local": _d(h.market_value_local),
                "market_value_base": _d(h.market_value_base),
                "cost_local": _d(h.cost_local),
                "cost_base": _d(h.cost_base),
                "unrealised_gain_base": _d(h.unrealised_gain_base),
                **_return_split_fields(h),
                "weight": _d(h.market_value_base / snap.total_value) if snap.total_value else None,
                "lots": [
                    {
                        "lot": lot.lot_id,
                        "acquired_on": lot.acquired,
                        "quantity": _d(lot.quantity),
                        "cost_base": _d(lot.cost_base),
                        "market_value_base": _d(lot.market_value_base),
                        "unrealised_gain_base": _d(lot.unrealised_gain_base),
                    }
                    for lot in h.lots
                ],
            }
        )
    return {
        "date": snap.date,
        "base_currency": snap.base_currency,
        "total_value": _d(snap.total_value),
        "securities_value": _d(snap.securities_value),
        "unrealised_gain_base": _d(snap.unrealised_gain_base),
        "holdings": rows,
        "cash": [{"currency": c, "amount": _d(a), "amount_base": _d(snap.cash_base[c])} for c, a in snap.cash.items()],
    }


# Analytics of a portfolio whose state does not allow them: 409 with the envelope (the request is fine).
ANALYTICS_RESPONSES = {
    200: OpenApiTypes.OBJECT,
    409: OpenApiResponse(
        description="`no_transactions`: the ledger is empty; `cannot_compute`: a price or FX rate is missing."
    ),
}


def _valuation(info: valuations.ValuationInfo) -> dict:
    """Where the stored figures stand: while ``updating`` or after a ``failed`` rebuild the
    figures are the previous ones (docs/analytics.md, "Stored valuations")."""
    return {
        "updating": info.updating,
        "failed": info.failed,
        "error": info.error,
        "valued_through": info.valued_through,
        "message": info.message,
    }


class PerformanceView(PortfolioAnalyticsView):
    @extend_schema(parameters=RANGE_PARAMS, responses=ANALYTICS_RESPONSES, summary="TWR, MWR (XIRR), risk, totals")
    def get(self, request, portfolio_pk):
        q = request.query_params
        refuse_empty_params(q, "start", "end", "preset")
        result = selectors.portfolio_performance(
            portfolio=self.portfolio(), start=q.get("start"), end=q.get("end"), preset=q.get("preset")
        )
        p = result.performance
        dd = p.max_drawdown
        s = p.summary
        return Response(
            {
                "start": p.start,
                "end": p.end,
                "base_currency": result.portfolio.base_currency,
                "start_value": _d(p.start_value),
                "end_value": _d(p.end_value),
                "net_flows": _d(p.net_flows),
                "twr": _ret(p.twr),
                "mwr": _ret(p.mwr),
                "benchmark": _ret(p.benchmark),
                "benchmark_symbol": result.portfolio.benchmark.symbol if result.portfolio.benchmark_id else None,
                "max_drawdown": None
                if dd is None
                else {
                    "depth": _d(dd.depth),
                    "peak_date": dd.peak_date,
                    "trough_date": dd.trough_date,
                    "recovery_date": dd.recovery_date,
                },
                "volatility": _d(p.volatility),
                "valuation": _valuation(result.valuation),
                "summary": {
                    "realised_gain": _d(s.realised_gain),
                    "realised_short": _d(s.realised_short),
                    "realised_long": _d(s.realised_long),
                    "dividends": _d(s.dividends),
                    "interest": _d(s.interest),
                    "income": _d(s.income),
                    "fees": _d(s.fees),
                    "taxes": _d(s.taxes),
                    "deposits": _d(s.deposits),
                    "withdrawals": _d(s.withdrawals),
                },
            }
        )


class AllocationView(PortfolioAnalyticsView):
    @extend_schema(
        parameters=[
            OpenApiParameter("by", OpenApiTypes.STR, enum=list(analytics.ALLOCATION_DIMENSIONS)),
            OpenApiParameter("date", LEDGER_DATE_SCHEMA, description="1900-01-01 to today; default today."),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Weights of market value by asset class, sector, country or currency",
    )
    def get(self, request, portfolio_pk):
        by = request.query_params.get("by", "asset_class")
        on = _date_param(request, "date")
        weights = selectors.portfolio_allocation(portfolio=self.portfolio(), by=by, on=on)
        return Response({"by": by, "date": on, "weights": [{"bucket": k, "weight": _d(w)} for k, w in weights.items()]})


class ValueSeriesView(PortfolioAnalyticsView):
    @extend_schema(parameters=RANGE_PARAMS, responses=ANALYTICS_RESPONSES, summary="Daily values, flows, TWR index")
    def get(self, request, portfolio_pk):
        q = request.query_params
        refuse_empty_params(q, "start", "end", "preset")
        portfolio = self.portfolio()
        series, index, bench = selectors.portfolio_value_series(
            portfolio=portfolio, start=q.get("start"), end=q.get("end"), preset=q.get("preset")
        )
        twr = dict(index)
        bench_by_day = dict(bench)
        return Response(
            {
                "valuation": _valuation(valuations.valuation_status(portfolio=portfolio)),
                "base_currency": series.base_currency,
                "opening_date": series.opening_date,
                "opening_value": _d(series.opening_value),
                "points": [
                    {
                        "date": d,
                        "value": _d(v),
                        "flow": _d(f),
                        "twr_index": _d(twr.get(d)),
                        "benchmark_index": _d(bench_by_day.get(d)),
                    }
                    for d, v, f in zip(series.dates, series.values, series.flows, strict=True)
                ],
            }
        )


class RealisedGainsView(PortfolioAnalyticsView):
    @extend_schema(
        parameters=[OpenApiParameter("year", OpenApiTypes.INT, description="Only lots disposed of in this year.")],
        responses=OpenApiTypes.OBJECT,
        summary="Realised gains per year (short/long term) and per disposed lot",
    )
    def get(self, request, portfolio_pk):
        raw = request.query_params.get("year")
        try:
            year = int(raw) if raw is not None else None
        except ValueError as exc:
            raise ValidationError({"year": "Enter a year, e.g. 2025."}) from exc
        portfolio = self.portfolio()
        by_year, lots, infos = selectors.portfolio_realised_gains(portfolio=portfolio, year=year)
        return Response(
            {
                "base_currency": portfolio.base_currency,
                "years": [
                    {"year": y, "short": _d(g.short), "long": _d(g.long), "total": _d(g.total)}
                    for y, g in by_year.items()
                ],
                "lots": [
                    {
                        "sell": r.txn_id,
                        "lot": r.lot_id,
                        "instrument": r.instrument_id,
                        "symbol": infos[r.instrument_id].symbol if r.instrument_id in infos else None,
                        "acquired_on": r.acquired,
                        "disposed_on": r.disposed,
                        "quantity": _d(r.quantity),
                        "proceeds_base": _d(r.proceeds_base),
                        "cost_base": _d(r.cost_base),
                        "gain_base": _d(r.gain_base),
                        "gain_local": _d(r.gain_local),
                        "term": r.term,
                    }
                    for r in lots
                ],
            }
        )


class FirmExposureView(IdempotentPostMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("currency", OpenApiTypes.STR, description="Reporting currency; default USD."),
            OpenApiParameter("date", LEDGER_DATE_SCHEMA, description="1900-01-01 to today; default today."),
        ],
        responses=inline_serializer(
            "FirmExposure",
            {
                "currency": serializers.CharField(),
                "total_value": serializers.DecimalField(max_digits=30, decimal_places=MONEY_PLACES),
                "securities_value": serializers.DecimalField(max_digits=30, decimal_places=MONEY_PLACES),
                "cash_value": serializers.DecimalField(max_digits=30, decimal_places=MONEY_PLACES),
            },
        ),
        summary="AUM, exposure per instrument and sector with the clients holding it, top movers",
    )
    def get(self, request):
        q = request.query_params
        on = _date_param(request, "date")
        exp = selectors.firm_exposure(user=request.user, currency=q.get("currency") or "USD", on=on)

        def rows(items):
            return [
                {
                    "key": r.key,
                    "label": r.label,
                    "instrument": r.instrument_id,
                    "sector": r.sector,
                    "value": _money(r.value),
                    "weight": _d(r.weight),
                    "day_change": _d(r.day_change),
                    "clients": r.clients,
                    "portfolios": r.portfolios,
                }
                for r in items
            ]

        return Response(
            {
                "currency": exp.currency,
                "date": exp.on,
                "total_value": _money(exp.total_value),
                "securities_value": _money(exp.securities_value),
                "cash_value": _money(exp.cash_value),
                "portfolio_count": exp.portfolio_count,
                "missing_rates": exp.missing_rates,
                "unpriced": exp.unpriced,
                "by_instrument": rows(exp.by_instrument),
                "by_sector": rows(exp.by_sector),
                "top_movers": rows(exp.movers),
            }
        )
