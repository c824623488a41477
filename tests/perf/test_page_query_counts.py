"""Query counts pinned for every page a user waits on (issue 19, point 3): the dashboard (owner
and advisor), the client record, the portfolio page, performance (SI and 1Y) and the value series.
Each count is exact (a change that adds a query fails here) and stays the same when the book, the
client's portfolios or the ledger grow (no N+1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portfolios import services
from tests.crm.factories import ActivityFactory, DealFactory
from tests.perf.test_per_request_work import production_cache, statements  # noqa: F401 (fixture)
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices

pytestmark = pytest.mark.django_db

# The pins. Each comment lists the queries in the order the page makes them; every page starts
# with the session and the user, and counts the bell's unread notices (base.html; one indexed count).
# Dashboard: onboarding check, holdings, cash balances, portfolio count, instruments, latest
# closes (firm exposure); the page of portfolios, their ledger fingerprints (summaries cached);
# recent activities, open deals closing this month (the soonest six, then the month's sums per
# currency: decision 1210), alert events, tasks due; open reconciliation breaks (a count).
DASHBOARD_OWNER = 17
DASHBOARD_ADVISOR = 17
# Client record: contact, portfolios, then for all of them at once today's stored close, the
# first close with capital and the flow days (value, TWR and MWR since inception), the stored
# figures of today for the YTD (decision 1210; the ledger fingerprints of the cached summaries
# only for a portfolio whose figures are behind) and the last year's closes (sparkline, fees this
# year; issue 25, money first); last activity, open tasks, open deals, subscriber, timeline
# (activities, stage changes, the ids of the client's portfolios then their latest transactions,
# read per portfolio along its date index, decision 1210; documents; whether the client has a
# fee billing group, issue 21).
CLIENT_RECORD = 20
# Portfolio page: portfolio; ledger, instruments and today's closes (two queries) for the holdings;
# valuation state, stored days since inception, their sums, realised gains per year; the
# transactions page (count, rows) and the instruments of the transaction form (its lot table
# is on the full form, linked: decision 1210).
PORTFOLIO_PAGE = 15
# Performance (any preset): portfolio; valuation state with the first ledger day; the range's
# stored days; their sums. The ledger and the closes are not read.
PERFORMANCE = 6
# Value series: portfolio; valuation state (read once: the view hands it to the selector and
# to the response's "valuation" block); the range's stored days.
VALUE_SERIES = 5


@pytest.fixture
def instrument(firm):
    today = timezone.localdate()
    inst = InstrumentFactory(symbol="PINQ")
    daily_prices(inst, today - timedelta(days=400), [str(100 + i % 13) for i in range(401)])
    return inst


@pytest.fixture
def add_portfolio(advisor, instrument):
    """``add_portfolio(client=None, trades=1)``: a portfolio of ``advisor`` with a deposit and trades."""
    today = timezone.localdate()

    def make(client=None, trades: int = 1):
        p = PortfolioFactory(advisor=advisor, client=client or ContactFactory(owner=advisor))
        start = today - timedelta(days=380)
        services.transaction_record(portfolio=p, kind="deposit", trade_date=start, amount="100000")
        for i in range(trades):
            services.transaction_record(
                portfolio=p,
                kind="buy",
                trade_date=start + timedelta(days=i * 3),
                instrument=instrument,
                quantity="1",
                price="100",
            )
        return p

    return make


def _count(client, url: str) -> tuple[int, list[str]]:
    client.get(url)  # first request: host, session and summary caches
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    sql = statements(ctx)
    return len(sql), sql


def _pinned(client, url: str, pin: int | None, grow) -> None:
    few, sql = _count(client, url)
    grow()
    many, sql_many = _count(client, url)
    assert many == few, sql_many
    assert few == pin, sql


@pytest.mark.parametrize("who", ["owner", "advisor"])
def test_dashboard_query_count_is_pinned(who, request, client_for, production_cache, add_portfolio, advisor):  # noqa: F811
    client = client_for(request.getfixturevalue(who))
    add_portfolio()
    today = timezone.localdate()
    DealFactory(owner=advisor, expected_close=today)  # the deals panel reads its rows and its sums
    pin = DASHBOARD_OWNER if who == "owner" else DASHBOARD_ADVISOR
    _pinned(
        client,
        "/",
        pin,
        lambda: [(add_portfolio(trades=3), DealFactory(owner=advisor, expected_close=today)) for _ in range(5)],
    )


def test_client_record_query_count_is_pinned(owner, client_for, production_cache, add_portfolio, advisor):  # noqa: F811
    client = client_for(owner)
    contact = ContactFactory(owner=advisor, first_name="Pinned", last_name="Client")
    add_portfolio(client=contact)
    ActivityFactory(contact=contact)
    DealFactory(contact=contact)

    def grow():
        for _ in range(3):
            add_portfolio(client=contact, trades=4)
            ActivityFactory(contact=contact, owner=owner)
            DealFactory(contact=contact)

    _pinned(client, f"/crm/contacts/{contact.pk}/", CLIENT_RECORD, grow)


def test_portfolio_page_query_count_is_pinned(advisor, client_for, production_cache, add_portfolio, instrument):  # noqa: F811
    client = client_for(advisor)
    p = add_portfolio()
    today = timezone.localdate()

    def grow():
        for i in range(20):
            services.transaction_record(
                portfolio=p,
                kind="buy",
                trade_date=today - timedelta(days=300 - i),
                instrument=instrument,
                quantity="1",
                price="100",
            )

    _pinned(client, f"/portfolios/{p.pk}/", PORTFOLIO_PAGE, grow)


@pytest.mark.parametrize("preset", ["SI", "1Y"])
def test_performance_query_count_is_pinned(preset, advisor, client_for, production_cache, add_portfolio, instrument):  # noqa: F811
    client = client_for(advisor)
    p = add_portfolio()
    today = timezone.localdate()

    def grow():
        for i in range(20):
            services.transaction_record(
                portfolio=p,
                kind="buy",
                trade_date=today - timedelta(days=300 - i),
                instrument=instrument,
                quantity="1",
                price="100",
            )

    _pinned(client, f"/api/v1/portfolios/{p.pk}/performance/?preset={preset}", PERFORMANCE, grow)


def test_value_series_query_count_is_pinned(advisor, client_for, production_cache, add_portfolio, instrument):  # noqa: F811
    client = client_for(advisor)
    p = add_portfolio()
    today = timezone.localdate()

    def grow():
        for i in range(20):
            services.transaction_record(
                portfolio=p,
                kind="buy",
                trade_date=today - timedelta(days=300 - i),
                instrument=instrument,
                quantity="1",
                price="100",
            )

    _pinned(client, f"/api/v1/portfolios/{p.pk}/value-series/?preset=1Y", VALUE_SERIES, grow)
