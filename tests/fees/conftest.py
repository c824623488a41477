"""Fee fixtures: cash accounts with stored valuations (deposits through the real ledger service)."""

from __future__ import annotations

from datetime import date

import pytest

from fees import services as fee_services
from portfolios import services as portfolio_services
from tests.portfolios.factories import ContactFactory, PortfolioFactory

TIERS = [{"upto": "1000000", "bps": "100"}, {"upto": None, "bps": "75"}]


def account(advisor, client, deposits: dict[date, str], *, currency: str = "USD", name: str | None = None):
    portfolio = PortfolioFactory(
        advisor=advisor, client=client, base_currency=currency, **({"name": name} if name else {})
    )
    for day, amount in sorted(deposits.items()):
        portfolio_services.transaction_record(
            portfolio=portfolio, kind="deposit", trade_date=day, amount=amount, currency=currency
        )
    return portfolio


@pytest.fixture
def client_contact(owner):
    return ContactFactory(owner=owner, first_name="Ada", last_name="Household")


@pytest.fixture
def schedule(firm):
    return fee_services.fee_schedule_create(
        name="Standard", effective_from=date(2020, 1, 1), method="tiered", tiers=TIERS
    )


@pytest.fixture
def product(schedule):
    return fee_services.product_create(name="Wealth management", fee_schedule=schedule)
