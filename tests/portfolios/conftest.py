from __future__ import annotations

from datetime import date

import pytest

from portfolios import services

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory

D = date


@pytest.fixture
def today():
    return date(2025, 12, 31)


@pytest.fixture
def aapl(firm):
    return InstrumentFactory(symbol="AAPLT", name="Apple Test", currency="USD", sector="Technology")


@pytest.fixture
def sap(firm):
    return InstrumentFactory(symbol="SAPT", name="SAP Test", currency="EUR", sector="Technology", country="DE")


@pytest.fixture
def client_contact(firm, advisor):
    return ContactFactory(owner=advisor, first_name="Ada", last_name="Lovelace")


@pytest.fixture
def portfolio(firm, advisor, client_contact):
    return PortfolioFactory(name="Ada growth", advisor=advisor, client=client_contact, base_currency="USD")


@pytest.fixture
def record(portfolio, advisor, today):
    """``record(kind, day, **fields)`` records into ``portfolio`` as the advisor."""

    def make(kind, day, target=None, **fields):
        return services.transaction_record(
            portfolio=target or portfolio, created_by=advisor, today=today, kind=kind, trade_date=day, **fields
        )

    return make
