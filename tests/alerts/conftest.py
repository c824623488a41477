from datetime import date
from decimal import Decimal

import pytest

from crm.models import Contact
from portfolios.models import Holding, Portfolio
from tests.market.factories import InstrumentFactory


@pytest.fixture
def aapl(db):
    return InstrumentFactory(symbol="AAPL", exchange="XNAS", name="Apple Inc.", currency="USD")


def csv_of(instrument, closes: dict) -> bytes:
    lines = ["symbol,exchange,date,close"] + [
        f"{instrument.symbol},{instrument.exchange},{day.isoformat()},{value}" for day, value in closes.items()
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def import_closes(django_capture_on_commit_callbacks):
    """Import closes through the real importer and run what commits trigger (alert tasks, eager)."""
    from portfolios.market.services import prices_import

    def run(instrument, closes: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return prices_import(file=csv_of(instrument, closes))

    return run


@pytest.fixture
def client_portfolio(firm, advisor, aapl):
    """A client of ``advisor`` whose portfolio holds AAPL."""
    contact = Contact.objects.create(first_name="Ada", last_name="Client", owner=advisor, lifecycle="client")
    portfolio = Portfolio.objects.create(name="Ada growth", client=contact, advisor=advisor, base_currency="USD")
    Holding.objects.create(
        portfolio=portfolio,
        instrument=aapl,
        quantity=Decimal(10),
        currency="USD",
        cost_local=Decimal(1000),
        cost_base=Decimal(1000),
    )
    return portfolio


DAY = date(2026, 1, 5)
