"""Portfolio summaries (the dashboard's performance panel, the portfolio list) cached by ledger
fingerprint when the shared cache is Redis (here: process memory standing in for it)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolios import selectors, services
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices

TODAY = date(2025, 1, 10)


@pytest.fixture
def memory_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "perf-summaries"},
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def book(firm, advisor):
    instrument = InstrumentFactory(symbol="PERFT")
    daily_prices(instrument, TODAY - timedelta(days=9), [str(100 + i) for i in range(10)])
    out = []
    for n in range(3):
        p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
        services.transaction_record(
            portfolio=p,
            created_by=advisor,
            today=TODAY,
            kind="deposit",
            trade_date=TODAY - timedelta(days=9),
            amount="10000",
            currency="USD",
        )
        services.transaction_record(
            portfolio=p,
            created_by=advisor,
            today=TODAY,
            kind="buy",
            trade_date=TODAY - timedelta(days=9),
            instrument=instrument,
            quantity=str(10 + n),
            price="100",
            currency="USD",
        )
        out.append(p)
    return out, instrument


def statements(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]


def test_warm_summaries_cost_one_query(memory_cache, book):
    portfolios, _ = book
    cold = selectors.portfolio_summaries(portfolios, today=TODAY)
    with CaptureQueriesContext(connection) as ctx:
        warm = selectors.portfolio_summaries(portfolios, today=TODAY)
    assert len(statements(ctx)) == 1  # the ledger fingerprints
    assert warm == cold
    assert warm[portfolios[0].pk].value == Decimal("10090")  # 9,000 cash + 10 x 109


def test_a_ledger_change_shows_at_once(memory_cache, book, advisor):
    portfolios, instrument = book
    before = selectors.portfolio_summaries(portfolios, today=TODAY)
    services.transaction_record(
        portfolio=portfolios[0],
        created_by=advisor,
        today=TODAY,
        kind="buy",
        trade_date=TODAY,
        instrument=instrument,
        quantity="5",
        price="109",
        currency="USD",
    )
    after = selectors.portfolio_summaries(portfolios, today=TODAY)
    assert after[portfolios[0].pk].value == before[portfolios[0].pk].value  # cash became units, same value
    services.transaction_record(
        portfolio=portfolios[0],
        created_by=advisor,
        today=TODAY,
        kind="withdrawal",
        trade_date=TODAY,
        amount="1000",
        currency="USD",
    )
    assert selectors.portfolio_summaries(portfolios, today=TODAY)[portfolios[0].pk].value == Decimal("9090")
    assert after[portfolios[1].pk] == before[portfolios[1].pk]
