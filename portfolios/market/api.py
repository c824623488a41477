"""Read-only market data API: instruments, their prices, FX rates. Any authenticated firm member or key."""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers, viewsets

from codex.api.idempotency import IdempotentPostMixin

from .models import AssetClass, FxRate, Instrument, Price
from .selectors import fx_rate_list, instrument_list, price_series


class InstrumentSerializer(serializers.ModelSerializer):
    last_close = serializers.DecimalField(max_digits=20, decimal_places=6, read_only=True, allow_null=True)
    last_date = serializers.DateField(read_only=True, allow_null=True)

    class Meta:
        model = Instrument
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
        ]


class PriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Price
        fields = ["date", "close"]


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


class InstrumentViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """Instruments (shared by every firm) with their latest close. Read-only."""

    serializer_class = InstrumentSerializer
    filterset_class = InstrumentFilter
    search_fields = ["symbol", "name"]
    ordering_fields = ["symbol", "name", "asset_class", "currency", "exchange", "last_date"]
    ordering = ["symbol", "exchange"]

    def get_queryset(self):
        return instrument_list()


class InstrumentPriceListView(IdempotentPostMixin, generics.ListAPIView):
    """Daily closes of one instrument, oldest first; ``?start=YYYY-MM-DD&end=YYYY-MM-DD``."""

    serializer_class = PriceSerializer
    filterset_class = PriceRangeFilter
    search_fields: list[str] = []
    ordering_fields = ["date"]
    ordering = ["date"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Price.objects.none()
        instrument = get_object_or_404(Instrument, pk=self.kwargs["pk"])
        return price_series(instrument=instrument)


class FxRateViewSet(IdempotentPostMixin, viewsets.ReadOnlyModelViewSet):
    """Daily FX rates: one unit of ``base`` buys ``rate`` units of ``quote``."""

    serializer_class = FxRateSerializer
    filterset_class = FxRateFilter
    ordering_fields = ["date", "base", "quote"]
    ordering = ["base", "quote", "-date"]
    search_fields: list[str] = []

    def get_queryset(self):
        return fx_rate_list()
