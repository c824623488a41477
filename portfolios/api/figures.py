"""A portfolio's figures (holdings, performance, allocation, value series, realised gains) and the
firm's exposure."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.filters import refuse_empty_params
from codex.api.idempotency import IdempotentPostMixin

from .. import analytics, selectors, valuations
from .ledger import (
    LEDGER_DATE_SCHEMA,
    PortfolioScopedMixin,
    _date_param,
)


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
        info = valuations.valuation_status(portfolio=portfolio)
        series, index, bench = selectors.portfolio_value_series(
            portfolio=portfolio, start=q.get("start"), end=q.get("end"), preset=q.get("preset"), info=info
        )
        twr = dict(index)
        bench_by_day = dict(bench)
        return Response(
            {
                "valuation": _valuation(info),
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
