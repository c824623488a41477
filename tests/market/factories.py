from decimal import Decimal

import factory

from portfolios.market.models import FxRate, Instrument, Price


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument

    symbol = factory.Sequence(lambda n: f"TST{n}")
    exchange = "XTST"
    name = factory.LazyAttribute(lambda o: f"Test instrument {o.symbol}")
    asset_class = "equity"
    currency = "USD"
    sector = "Technology"
    country = "US"


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    instrument = factory.SubFactory(InstrumentFactory)
    date = factory.Faker("date_object")
    close = Decimal("100")


class FxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FxRate

    base = "EUR"
    quote = "USD"
    date = factory.Faker("date_object")
    rate = Decimal("1.1")
