"""Factories for portfolio tests. Market rows live in the public schema (shared app)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import factory
from django_tenants.utils import schema_context

from crm.models import Contact, Lifecycle
from portfolios.market.models import AssetClass, FxRate, Instrument, Price
from portfolios.models import Portfolio


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument

    symbol = factory.Sequence(lambda n: f"TST{n}")
    exchange = "XTST"
    name = factory.LazyAttribute(lambda o: f"{o.symbol} Corp")
    asset_class = AssetClass.EQUITY
    currency = "USD"
    sector = "Technology"
    country = "US"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    first_name = factory.Sequence(lambda n: f"Client{n}")
    last_name = "Test"
    lifecycle = Lifecycle.CLIENT


class PortfolioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Portfolio

    name = factory.Sequence(lambda n: f"Portfolio {n}")
    base_currency = "USD"


def add_prices(instrument: Instrument, closes: dict[date, str | Decimal]) -> None:
    Price.objects.bulk_create(Price(instrument=instrument, date=d, close=Decimal(str(c))) for d, c in closes.items())


def daily_prices(instrument: Instrument, start: date, values: list) -> None:
    add_prices(instrument, {start + timedelta(days=i): v for i, v in enumerate(values)})


def add_fx(base: str, quote: str, rates: dict[date, str]) -> None:
    FxRate.objects.bulk_create(FxRate(base=base, quote=quote, date=d, rate=Decimal(r)) for d, r in rates.items())


def in_public(fn, *args, **kwargs):
    with schema_context("public"):
        return fn(*args, **kwargs)
