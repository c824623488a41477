"""The client portal's API (``/api/v1/portal/``): what the static frontend (frontend/) reads.

Every operation answers only a signed-in client user (session + CSRF; ``portal.access``) and only
with their own contact's objects: anyone else gets 404 (staff have the staff API). Figures come from
the staff page's selectors (``portal.selectors``), typed serializers give the OpenAPI schema the
frontend's client is generated from.
"""

from __future__ import annotations

import calendar
import csv
import io
from datetime import date, timedelta

import django_filters
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.filters import StrictOrderingFilter
from codex.security.net import client_ip
from portfolios import analytics, valuations
from portfolios import selectors as portfolio_selectors
from portfolios.models import Kind, Transaction
from tenants import links
from tenants.services import audit_record

from . import access, selectors, services
from .models import Document, DocumentKind, Post


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=6, coerce_to_string=True, **kwargs)


def _rate(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=True, **kwargs)


RANGES = ("1M", "3M", "YTD", "1Y", "3Y", "ALL")
RANGE_CHOICES = [(r, r) for r in RANGES]


class PortalReturnSerializer(serializers.Serializer):
    base_date = serializers.DateField()
    end = serializers.DateField()
    cumulative = _rate()
    annualised = _rate(allow_null=True)
    value = _rate(help_text="The figure to show: annualised over periods longer than a year, else cumulative.")


class PortalFeeReturnSerializer(serializers.Serializer):
    net = PortalReturnSerializer(allow_null=True, help_text="Net of fees: the advisory fees deducted are a cost.")
    gross = PortalReturnSerializer(allow_null=True, help_text="Gross of fees: the advisory fees deducted added back.")
    fees = _money(help_text="Advisory fees deducted from the account in the period.")


class PortalPortfolioLineSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="portfolio.pk")
    name = serializers.CharField(source="portfolio.name")
    base_currency = serializers.CharField(source="portfolio.base_currency")
    value = _money(allow_null=True)
    value_in_total_currency = _money(allow_null=True)
    change_today = _money(allow_null=True)
    ytd = PortalReturnSerializer(allow_null=True)
    since_inception = PortalReturnSerializer(allow_null=True)
    updating = serializers.BooleanField(help_text="Figures are being recomputed; the previous ones are shown.")
    ytd_fee_return = PortalFeeReturnSerializer(allow_null=True, help_text="YTD gross and net of advisory fees.")
    since_inception_fee_return = PortalFeeReturnSerializer(
        allow_null=True, help_text="Since inception, gross and net of advisory fees."
    )


class PortalBucketSerializer(serializers.Serializer):
    bucket = serializers.CharField()
    weight = _rate()


class PortalOverviewSerializer(serializers.Serializer):
    currency = serializers.CharField()
    total_value = _money()
    change_today = _money()
    as_of = serializers.DateField()
    missing_rates = serializers.ListField(child=serializers.CharField())
    portfolios = PortalPortfolioLineSerializer(many=True)
    allocation = PortalBucketSerializer(many=True, help_text="By asset class, over all portfolios.")
    household = serializers.CharField(allow_null=True, help_text="The household shown, when bound to one.")


class PortalMeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    contact_id = serializers.IntegerField()
    household = serializers.CharField(allow_null=True, help_text="The household whose portfolios you see, if any.")
    firm_name = serializers.CharField()
    two_factor_required = serializers.BooleanField()


class PortalHoldingSerializer(serializers.Serializer):
    instrument = serializers.IntegerField()
    symbol = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    quantity = _rate()
    price = _rate()
    market_value_base = _money()
    cost_base = _money()
    unrealised_gain_base = _money()
    weight = _rate(allow_null=True)


class PortalCashSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = _money()
    amount_base = _money()


class PortalPeriodRowSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="MTD, QTD, YTD, 1Y, 3Y or SI (since inception).")
    start = serializers.DateField()
    end = serializers.DateField()
    twr = PortalReturnSerializer(allow_null=True)
    mwr = PortalReturnSerializer(allow_null=True, help_text="Money-weighted return (XIRR).")
    benchmark = PortalReturnSerializer(allow_null=True)
    clamped = serializers.BooleanField(help_text="The portfolio is younger than the period: measured from inception.")
    fee_return = PortalFeeReturnSerializer(
        allow_null=True, help_text="The TWR's period gross and net of advisory fees (the fees app's computation)."
    )


class PortalAllocationSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    bucket = serializers.CharField()
    weight = _rate()


class PortalYearGainsSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    short = _money()
    long = _money()
    total = _money()


class PortalPortfolioDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    base_currency = serializers.CharField()
    benchmark_symbol = serializers.CharField(allow_null=True)
    as_of = serializers.DateField(allow_null=True)
    total_value = _money(allow_null=True)
    unrealised_gain = _money(allow_null=True)
    income = _money(help_text="Dividends and interest since inception.")
    fees = _money(help_text="Fees since inception.")
    holdings = PortalHoldingSerializer(many=True)
    cash = PortalCashSerializer(many=True)
    returns = PortalPeriodRowSerializer(many=True)
    allocation = PortalAllocationSerializer(many=True)
    realised_by_year = PortalYearGainsSerializer(many=True)
    updating = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)


class PortalValuePointSerializer(serializers.Serializer):
    date = serializers.DateField()
    value = _money()
    twr_index = _rate(allow_null=True)


class PortalValueSeriesSerializer(serializers.Serializer):
    range = serializers.ChoiceField(choices=RANGE_CHOICES)
    start = serializers.DateField()
    end = serializers.DateField()
    base_currency = serializers.CharField()
    twr = PortalReturnSerializer(allow_null=True)
    points = PortalValuePointSerializer(many=True)


class PortalClientTransactionSerializer(serializers.ModelSerializer):
    instrument_symbol = serializers.CharField(source="instrument.symbol", read_only=True, allow_null=True)

    class Meta:
        model = Transaction
        # What a client sees of their ledger: no internal note, fingerprint or author.
        fields = ["id", "kind", "trade_date", "instrument_symbol", "quantity", "price", "fees", "amount", "currency"]
        read_only_fields = fields


SOURCE_CHOICES = [
    ("vault", "A file of the document vault: open it at documents/{id}/"),
    ("fee_statement", "An issued fee statement: open it at fee-statements/{id}/"),
]


class PortalDocumentSerializer(serializers.Serializer):
    """One entry of the documents list: a vault file or an issued fee statement (``source``)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=DocumentKind.choices)
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField(allow_null=True, help_text="Bytes; empty for fee statements.")
    period_end = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_fields(self):
        # "source" cannot be a class attribute: a serializer is a field, and Field.source is its own.
        return {"source": serializers.ChoiceField(choices=SOURCE_CHOICES), **super().get_fields()}


class PortalDocumentLinkSerializer(PortalDocumentSerializer):
    download_url = serializers.CharField(help_text="Signed, for this user only, expiring; checked again on use.")
    expires_in = serializers.IntegerField()


class PortalAdvisorSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    firm_name = serializers.CharField()


class PortalPostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Post
        fields = ["id", "title", "body_html", "published_at"]
        read_only_fields = fields


# --- views -----------------------------------------------------------------------------------------------
class ClientView(APIView):
    def scope(self) -> access.ClientScope:
        if getattr(self, "_scope", None) is None:
            self._scope = access.client_scope(self.request.user)
        return self._scope

    def contact(self):
        return self.scope().contact


class MeView(ClientView):
    @extend_schema(responses=PortalMeSerializer, summary="The signed-in client user and their firm", tags=["portal"])
    def get(self, request):
        scope = self.scope()
        contact = scope.contact
        user = request.user
        return Response(
            PortalMeSerializer(
                {
                    "email": user.email,
                    "first_name": user.first_name or contact.first_name,
                    "last_name": user.last_name or contact.last_name,
                    "contact_id": contact.pk,
                    "household": scope.household.name if scope.household is not None else None,
                    "firm_name": request.tenant.name,
                    "two_factor_required": bool(getattr(request.tenant, "require_2fa", False)),
                }
            ).data
        )


class OverviewView(ClientView):
    @extend_schema(
        responses=PortalOverviewSerializer, summary="Total value, today's change, portfolios", tags=["portal"]
    )
    def get(self, request):
        overview = selectors.client_overview(scope=self.scope())
        payload = {
            **{
                k: getattr(overview, k)
                for k in ("currency", "total_value", "change_today", "as_of", "missing_rates", "household")
            },
            "portfolios": overview.portfolios,
            "allocation": [{"bucket": b, "weight": w} for b, w in overview.allocation.items()],
        }
        return Response(PortalOverviewSerializer(payload).data)


def _ret(r):
    return (
        None
        if r is None
        else {
            "base_date": r.base_date,
            "end": r.end,
            "cumulative": r.cumulative,
            "annualised": r.annualised,
            "value": r.value,
        }
    )


def _fee_ret(f):
    return None if f is None else {"net": _ret(f.net), "gross": _ret(f.gross), "fees": f.fees}


class PortfolioDetailView(ClientView):
    @extend_schema(
        responses={
            200: PortalPortfolioDetailSerializer,
            404: OpenApiResponse(description="Not one of your portfolios."),
        },
        summary="One portfolio: holdings, returns by period (TWR, MWR, gross and net of fees), allocation, "
        "income, realised gains",
        tags=["portal"],
    )
    def get(self, request, pk: int):
        portfolio = access.client_portfolio(self.scope(), pk)
        dash = selectors.client_portfolio_page(portfolio=portfolio)
        fee_returns = selectors.period_fee_returns(portfolio=portfolio, rows=dash.returns)
        snap, infos = dash.snapshot, dict(dash.instruments)
        summary = dash.performance.summary if dash.performance else None
        payload = {
            "id": portfolio.pk,
            "name": portfolio.name,
            "base_currency": portfolio.base_currency,
            "benchmark_symbol": portfolio.benchmark.symbol if portfolio.benchmark is not None else None,
            "as_of": snap.date if snap else None,
            "total_value": snap.total_value if snap else None,
            "unrealised_gain": snap.unrealised_gain_base if snap else None,
            "income": (summary.dividends + summary.interest) if summary else 0,
            "fees": summary.fees if summary else 0,
            "holdings": [
                {
                    "instrument": h.instrument_id,
                    "symbol": infos[h.instrument_id].symbol if h.instrument_id in infos else None,
                    "name": infos[h.instrument_id].name if h.instrument_id in infos else None,
                    "currency": h.currency,
                    "quantity": h.quantity,
                    "price": h.price,
                    "market_value_base": h.market_value_base,
                    "cost_base": h.cost_base,
                    "unrealised_gain_base": h.unrealised_gain_base,
                    "weight": (h.market_value_base / snap.total_value) if snap.total_value else None,
                }
                for h in sorted(snap.holdings, key=lambda h: -h.market_value_base)
            ]
            if snap
            else [],
            "cash": [{"currency": c, "amount": a, "amount_base": snap.cash_base[c]} for c, a in snap.cash.items()]
            if snap
            else [],
            "returns": [
                {
                    "period": r.preset,
                    "start": r.start,
                    "end": r.end,
                    "twr": _ret(r.twr),
                    "mwr": _ret(r.mwr),
                    "benchmark": _ret(r.benchmark),
                    "clamped": r.clamped,
                    "fee_return": _fee_ret(f),
                }
                for r, f in zip(dash.returns, fee_returns, strict=True)
            ],
            "allocation": [
                {"dimension": dim, "bucket": bucket, "weight": w}
                for dim, weights in dash.allocations.items()
                for bucket, w in weights.items()
            ],
            "realised_by_year": [
                {"year": y, "short": g.short, "long": g.long, "total": g.total}
                for y, g in sorted(dash.realised_by_year.items())
            ],
            "updating": dash.valuation.updating,
            "message": dash.valuation.message,
        }
        return Response(PortalPortfolioDetailSerializer(payload).data)


def range_dates(name: str, *, inception: date, today: date) -> tuple[date, date]:
    """The value chart's range tabs as (start, end): 1M and 3M are calendar months back."""
    if name == "ALL":
        return inception, today
    if name in ("YTD", "1Y", "3Y"):
        return analytics.preset_range(name, today, inception)
    months = 1 if name == "1M" else 3
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    start = date(year, month + 1, min(today.day, last_day)) + timedelta(days=1)
    return max(start, inception), today


class ValueSeriesView(ClientView):
    @extend_schema(
        parameters=[OpenApiParameter("range", OpenApiTypes.STR, enum=list(RANGES), description="Default ALL.")],
        responses={200: PortalValueSeriesSerializer, 404: OpenApiResponse(description="Not one of your portfolios.")},
        summary="Daily values and the TWR index over a range (the chart's tabs)",
        tags=["portal"],
    )
    def get(self, request, pk: int):
        portfolio = access.client_portfolio(self.scope(), pk)
        name = request.query_params.get("range", "ALL").upper()
        if name not in RANGES:
            raise ValidationError({"range": f"Choose one of {', '.join(RANGES)}."})
        today = timezone.localdate()
        inception = valuations.valuation_status(portfolio=portfolio).inception
        if inception is None or inception > today:
            return Response(
                PortalValueSeriesSerializer(
                    {
                        "range": name,
                        "start": today,
                        "end": today,
                        "base_currency": portfolio.base_currency,
                        "twr": None,
                        "points": [],
                    }
                ).data
            )
        start, end = range_dates(name, inception=inception, today=today)
        series, index, _bench = portfolio_selectors.portfolio_value_series(portfolio=portfolio, start=start, end=end)
        twr = dict(index)
        return Response(
            PortalValueSeriesSerializer(
                {
                    "range": name,
                    "start": start,
                    "end": end,
                    "base_currency": series.base_currency,
                    "twr": _ret(analytics.twr_of(series)),
                    "points": [
                        {"date": d, "value": v, "twr_index": twr.get(d)}
                        for d, v in zip(series.dates, series.values, strict=True)
                    ],
                }
            ).data
        )


class ClientTransactionFilter(django_filters.FilterSet):
    start = django_filters.DateFilter(field_name="trade_date", lookup_expr="gte")
    end = django_filters.DateFilter(field_name="trade_date", lookup_expr="lte")
    kind = django_filters.MultipleChoiceFilter(choices=Kind.choices)

    class Meta:
        model = Transaction
        fields = ["kind", "start", "end"]


class TransactionListView(ClientView, generics.ListAPIView):
    serializer_class = PortalClientTransactionSerializer
    filterset_class = ClientTransactionFilter
    search_fields = ["instrument__symbol", "instrument__name"]
    ordering_fields = ["trade_date", "id", "kind"]
    ordering = ["-trade_date", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        portfolio = access.client_portfolio(self.scope(), self.kwargs["pk"])
        return portfolio_selectors.transactions_of(portfolio=portfolio)

    @extend_schema(summary="The portfolio's transactions, filtered by kind and dates", tags=["portal"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


CSV_COLUMNS = ["trade_date", "kind", "instrument", "quantity", "price", "fees", "amount", "currency"]


class TransactionExportView(TransactionListView):
    pagination_class = None

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR}, summary="The same list as CSV", tags=["portal"])
    def get(self, request, *args, **kwargs):
        rows = self.filter_queryset(self.get_queryset())

        def lines():
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for t in rows.iterator(chunk_size=500):
                writer.writerow(
                    [
                        t.trade_date,
                        t.kind,
                        t.instrument.symbol if t.instrument is not None else "",
                        t.quantity,
                        t.price,
                        t.fees,
                        "" if t.amount is None else t.amount,
                        t.currency,
                    ]
                )
                yield out.getvalue()
                out.seek(0)
                out.truncate()
            yield out.getvalue()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transactions-{self.kwargs["pk"]}.csv"'
        return response


DOCUMENT_COLUMNS = ("source", "id", "title", "kind", "filename", "content_type", "size", "period_end", "created_at")


class DocumentListView(ClientView, generics.ListAPIView):
    """The vault's shared files and the issued fee statements, in one list (one query a page: a
    UNION of both, paged and ordered by the database)."""

    serializer_class = PortalDocumentSerializer
    filterset_fields = ["kind"]
    search_fields = ["title"]
    ordering_fields = ["created_at", "title", "period_end"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Document.objects.none()
        return access.client_documents(self.scope())

    def filter_queryset(self, queryset):
        # The vault's side through the view's own filter backends (which also check every
        # parameter: an unknown kind or ordering is a 400); the statements' side by the same rules.
        documents = super().filter_queryset(queryset)
        statements = access.client_fee_statements(self.scope()).annotate(
            source=Value("fee_statement"),
            title=Concat(Value("Fee statement "), F("invoice__number")),
            kind=Value(DocumentKind.STATEMENT.value),
            filename=Concat(F("invoice__number"), Value(".pdf")),
            content_type=Value("application/pdf"),
            size=Value(None, output_field=models.BigIntegerField()),
        )
        kind = self.request.query_params.get("kind")
        if kind and kind != DocumentKind.STATEMENT:
            statements = statements.none()
        for term in SearchFilter().get_search_terms(self.request):
            statements = statements.filter(title__icontains=term)
        ordering = StrictOrderingFilter().get_ordering(self.request, queryset, self) or self.ordering
        vault = documents.annotate(source=Value("vault")).values(*DOCUMENT_COLUMNS).order_by()
        tie = [] if {"id", "-id"} & set(ordering) else ["-id"]
        return vault.union(statements.values(*DOCUMENT_COLUMNS).order_by(), all=True).order_by(*ordering, *tie)

    @extend_schema(
        summary="Documents shared with you (yours, your household's and the firm's) and your fee statements",
        tags=["portal"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _document_entry(document: Document) -> dict:
    return {"source": "vault", **{k: getattr(document, k) for k in DOCUMENT_COLUMNS[1:]}}


def _statement_entry(statement) -> dict:
    return {
        "source": "fee_statement",
        "id": statement.pk,
        "title": f"Fee statement {statement.invoice.number}",
        "kind": DocumentKind.STATEMENT,
        "filename": f"{statement.invoice.number}.pdf",
        "content_type": "application/pdf",
        "size": None,
        "period_end": statement.period_end,
        "created_at": statement.created_at,
    }


class _OpenView(ClientView):
    """One entry of the documents list with a signed, expiring link; every view and refusal audited."""

    target = ""

    def find(self, pk):
        raise NotImplementedError

    def entry(self, obj) -> dict:
        raise NotImplementedError

    def open(self, request, pk):
        try:
            obj = self.find(pk)
        except (Http404, PermissionDenied):
            audit_record(
                action="portal.document_refused",
                actor=request.user.email,
                tenant=request.tenant,
                target=f"{self.target}:{str(pk)[:20]}",
                ip=client_ip(request),
            )
            raise
        audit_record(
            action="portal.document_viewed",
            actor=request.user.email,
            tenant=request.tenant,
            target=f"{self.target}:{obj.pk}",
            ip=client_ip(request),
        )
        data = self.entry(obj)
        token = services.download_token(
            user=request.user, **({"document": obj} if self.target == "document" else {"fee_statement": obj})
        )
        data["download_url"] = links.firm_path("portal:download", args=[token])
        data["expires_in"] = settings.CODEX_DOWNLOAD_LINK_MAX_AGE
        return Response(PortalDocumentLinkSerializer(data).data)


class DocumentDetailView(_OpenView):
    target = "document"

    def find(self, pk):
        return access.client_document(self.scope(), pk)

    def entry(self, obj) -> dict:
        return _document_entry(obj)

    @extend_schema(
        responses={
            200: PortalDocumentLinkSerializer,
            404: OpenApiResponse(description="Not a document shared with you."),
        },
        summary="One document with a signed, expiring download link (the view is audited)",
        tags=["portal"],
    )
    def get(self, request, pk: int):
        return self.open(request, pk)


class FeeStatementDetailView(_OpenView):
    target = "fee_statement"

    def find(self, pk):
        return access.client_fee_statement(self.scope(), pk)

    def entry(self, obj) -> dict:
        return _statement_entry(obj)

    @extend_schema(
        responses={
            200: PortalDocumentLinkSerializer,
            404: OpenApiResponse(description="Not one of your fee statements."),
        },
        summary="One issued fee statement with a signed, expiring download link (the view is audited)",
        tags=["portal"],
    )
    def get(self, request, pk: int):
        return self.open(request, pk)


class AdvisorView(ClientView):
    @extend_schema(responses=PortalAdvisorSerializer, summary="Your advisor's contact card", tags=["portal"])
    def get(self, request):
        contact = self.contact()
        owner = contact.owner
        return Response(
            PortalAdvisorSerializer(
                {
                    "name": (owner.get_full_name() or owner.email) if owner else request.tenant.name,
                    "email": owner.email if owner else "",
                    "firm_name": request.tenant.name,
                }
            ).data
        )


class PostListView(ClientView, generics.ListAPIView):
    serializer_class = PortalPostSerializer
    ordering_fields = ["published_at"]
    ordering = ["-published_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Post.objects.none()
        return access.client_posts(self.contact())

    @extend_schema(summary="The firm's posts for you (sanitised HTML)", tags=["portal"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
