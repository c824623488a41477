"""Market data API: instruments, their prices, FX rates (read by any member or key), and the
firm's own instruments with their manual prices (created and changed by members who may write)."""

from __future__ import annotations

import django_filters
from django.core.validators import RegexValidator
from django.db import connection
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiRequest, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite
from codex.uploads import UploadValidator

from . import services
from .models import AssetClass, FeedRun, FxRate, Instrument, Price
from .selectors import feed_runs_for_firm, fx_rate_list, instrument_list, price_series


def _actor(request) -> str:
    return getattr(request.user, "email", "") or str(request.user)


class InstrumentSerializer(serializers.ModelSerializer):
    last_close = serializers.DecimalField(max_digits=20, decimal_places=6, read_only=True, allow_null=True)
    last_date = serializers.DateField(read_only=True, allow_null=True)
    stale_since = serializers.DateField(
        read_only=True, allow_null=True, help_text="Date of the last close when it is older than expected."
    )
    firm_instrument = serializers.BooleanField(source="is_firm_instrument", read_only=True)

    class Meta:
        model = Instrument
        read_only_fields = ["is_active"]
        fields = [
            "id",
            "symbol",
            "exchange",
            "name",
            "asset_class",
            "currency",
            "sector",
            "country",
            "is_active",
            "last_close",
            "last_date",
            "stale_since",
            "firm_instrument",
        ]
        # The rules firm_instrument_create applies, stated here so the schema documents them: the
        # model's default asset class is the market feeds', a firm names its instrument's class.
        extra_kwargs = {
            "asset_class": {"required": True},
            "currency": {
                "validators": [RegexValidator(r"^[A-Za-z]{3}$", "Enter a three-letter currency code.")],
                "help_text": "ISO 4217 code, e.g. USD.",
            },
            "exchange": {"required": False},
            "sector": {"required": False},
            "country": {
                "required": False,
                "validators": [RegexValidator(r"^[A-Za-z]{2}$", "Enter a two-letter ISO country code.")],
            },
        }


class PriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Price
        fields = ["date", "close", "source"]
        read_only_fields = ["source"]


class ManualPriceInputSerializer(serializers.Serializer):
    date = serializers.DateField()
    close = serializers.DecimalField(max_digits=20, decimal_places=6)
    overwrite = serializers.BooleanField(default=False, help_text="Replace a different stored price.")


class ManualPriceImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        validators=[UploadValidator(kind="csv")],
        help_text="A CSV file (.csv or .txt) with the header symbol,exchange,date,close.",
    )
    overwrite = serializers.BooleanField(default=False)


class FeedRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeedRun
        fields = [
            "id",
            "provider",
            "kind",
            "status",
            "started_at",
            "finished_at",
            "written",
            "unchanged",
            "failures",
            "error",
            "report",
        ]


class FxRateSerializer(serializers.ModelSerializer):
    class Meta:
        model = FxRate
        fields = ["base", "quote", "date", "rate"]


class InstrumentFilter(django_filters.FilterSet):
    asset_class = django_filters.ChoiceFilter(choices=AssetClass.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    exchange = django_filters.CharFilter(lookup_expr="iexact")
    symbol = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Instrument
        fields = ["asset_class", "currency", "exchange", "symbol", "is_active"]


class PriceRangeFilter(django_filters.FilterSet):
    start = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    end = django_filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = Price
        fields = ["start", "end"]


class FxRateFilter(django_filters.FilterSet):
    base = django_filters.CharFilter(lookup_expr="iexact")
    quote = django_filters.CharFilter(lookup_expr="iexact")
    start = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    end = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    date = django_filters.DateFilter()

    class Meta:
        model = FxRate
        fields = ["base", "quote", "start", "end", "date"]


class InstrumentViewSet(
    IdempotentPostMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Instruments with their latest close: the shared market ones and the firm's own.

    ``POST`` creates a firm instrument (visible only to this firm); ``PUT``/``PATCH`` change one;
    a shared instrument answers 403 (maintained by the platform)."""

    serializer_class = InstrumentSerializer
    filterset_class = InstrumentFilter
    permission_classes = [IsAuthenticated, CanWrite]
    search_fields = ["symbol", "name"]
    ordering_fields = ["symbol", "name", "asset_class", "currency", "exchange", "last_date"]
    ordering = ["symbol", "exchange"]

    def get_queryset(self):
        return instrument_list()

    def perform_create(self, serializer):
        serializer.instance = services.firm_instrument_create(
            owner=connection.schema_name, data=serializer.validated_data, actor=_actor(self.request)
        )

    def perform_update(self, serializer):
        serializer.instance = services.firm_instrument_update(
            instrument=serializer.instance,
            owner=connection.schema_name,
            data=serializer.validated_data,
            actor=_actor(self.request),
        )

    def update(self, request, *args, **kwargs):
        instrument = self.get_object()
        if not instrument.is_firm_instrument:
            raise services.SharedInstrumentReadOnly()
        response = super().update(request, *args, **kwargs)
        fresh = instrument_list().get(pk=instrument.pk)
        response.data = InstrumentSerializer(fresh).data
        return response

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        fresh = instrument_list().get(pk=response.data["id"])
        response.data = InstrumentSerializer(fresh).data
        return response


class InstrumentPriceListView(IdempotentPostMixin, generics.ListAPIView):
    """Daily closes of one instrument, oldest first; ``?start=YYYY-MM-DD&end=YYYY-MM-DD``.

    ``POST {date, close[, overwrite]}`` records a manual price of a firm instrument (403 for a
    shared one; 400 naming the field for a bad value or a different stored price)."""

    serializer_class = PriceSerializer
    filterset_class = PriceRangeFilter
    permission_classes = [IsAuthenticated, CanWrite]
    search_fields: list[str] = []
    ordering_fields = ["date"]
    ordering = ["date"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Price.objects.none()
        instrument = get_object_or_404(Instrument, pk=self.kwargs["pk"])
        return price_series(instrument=instrument)

    @extend_schema(request=ManualPriceInputSerializer, responses={201: PriceSerializer})
    def post(self, request, pk):
        instrument = get_object_or_404(Instrument, pk=pk)
        data = ManualPriceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.manual_price_set(
            instrument=instrument,
            owner=connection.schema_name,
            day=data.validated_data["date"],
            close=data.validated_data["close"],
            overwrite=data.validated_data["overwrite"],
            actor=_actor(request),
        )
        price = Price.objects.get(instrument=instrument, date=data.validated_data["date"])
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)


class ManualPriceImportView(IdempotentPostMixin, APIView):
    """CSV of manual prices (``symbol,exchange,date,close``) for the firm's own instruments: all
    or nothing; the answer lists per-row errors (400) or the counts (201)."""

    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, CanWrite]

    @extend_schema(
        request={
            "multipart/form-data": OpenApiRequest(
                ManualPriceImportSerializer,
                # what the upload check (codex.uploads) accepts: a .csv name, a CSV content type
                encoding={
                    "file": {
                        "contentType": "text/csv",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "example": 'form-data; name="file"; filename="prices.csv"',
                                }
                            }
                        },
                    }
                },
            )
        },
        responses={201: dict},
    )
    def post(self, request):
        data = ManualPriceImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            result = services.manual_prices_import(
                file=upload,
                owner=connection.schema_name,
                overwrite=data.validated_data["overwrite"],
                actor=_actor(request),
                filename=upload.name,
            )
        except services.ImportRejected as exc:
            return Response(
                {"error": {"code": "import_rejected", "message": str(exc), "details": exc.result.as_dict()}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


class FeedRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Feed health: the market-data runs (provider, status, counts, per-instrument report). The
    feeds fetch shared instruments only, so every firm sees the same runs; who ran one is not shown."""

    serializer_class = FeedRunSerializer
    ordering_fields = ["started_at"]
    ordering = ["-started_at"]
    search_fields: list[str] = []

    def get_queryset(self):
        return feed_runs_for_firm()


class FxRateViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """Daily FX rates: one unit of ``base`` buys ``rate`` units of ``quote``."""

    serializer_class = FxRateSerializer
    filterset_class = FxRateFilter
    ordering_fields = ["date", "base", "quote"]
    ordering = ["base", "quote", "-date"]
    search_fields: list[str] = []

    def get_queryset(self):
        return fx_rate_list()
