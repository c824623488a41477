"""The firm's fee revenue: by dimension, billable AUM, effective rate, CSV; advisors see their book."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from fees import selectors
from fees import services as fee_services
from tests.fees.conftest import account
from tests.portfolios.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(owner, advisor2, client_contact, product):
    a = account(owner, client_contact, {date(2026, 6, 1): "1000000", date(2026, 9, 1): "920000"})
    other = ContactFactory(owner=advisor2, first_name="Bea", last_name="Book")
    b = account(advisor2, other, {date(2026, 6, 1): "500000"})
    for name, contact, p in (("Ada household", client_contact, a), ("Bea household", other, b)):
        group = fee_services.billing_group_create(name=name, client=contact, portfolios=[p])
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))


def test_revenue_by_household_with_effective_rates(owner, issued):
    revenue = selectors.fee_revenue(user=owner, start=date(2026, 10, 1), end=date(2026, 10, 31), by="household")
    rows = {r.label: r for r in revenue.rows}
    # Ada: ADB 1,300,000 -> 3,087.67; 3,087.67 x 365 / (1,300,000 x 92) = 94.23 bps a year
    assert (rows["Ada household"].revenue, rows["Ada household"].rate_bps) == (D("3087.67"), D("94.23"))
    # Bea: 500,000 at 1 % -> 1,260.27; 1,260.27 x 365 / (500,000 x 92) = 99.9997 -> 100.00 bps
    assert (rows["Bea household"].revenue, rows["Bea household"].rate_bps) == (D("1260.27"), D("100.00"))
    assert revenue.totals == [selectors.RevenueTotal("USD", D("4347.94"), D("1800000.00"))]
    assert {r.currency for r in revenue.rows} == {"USD"}


def test_revenue_by_month_and_csv(owner_client, issued):
    response = owner_client.get("/api/v1/fee-revenue/?start=2026-01-01&end=2026-12-31&by=month")
    assert response.status_code == 200
    assert [(r["key"], r["currency"], r["revenue"]) for r in response.json()["rows"]] == [("2026-10", "USD", "4347.94")]
    assert response.json()["totals"] == [{"currency": "USD", "revenue": "4347.94", "billable_aum": "1800000.00"}]
    assert (response.json()["total"], response.json()["billable_aum"]) == ("4347.94", "1800000.00")
    csv = owner_client.get("/api/v1/fee-revenue/export/?start=2026-01-01&end=2026-12-31&by=product")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    # API v1's columns, the currency appended (decision 1350)
    assert lines[0] == "product,revenue,billable_value,effective_rate_bps,currency"
    assert lines[1].startswith("Wealth management,4347.94,1800000.00,") and lines[1].endswith(",USD")
    assert lines[-1] == "total,4347.94,,,USD"


def test_advisors_see_their_own_books_revenue(advisor, advisor2, issued):
    assert selectors.fee_revenue(user=advisor, start=date(2026, 1, 1), end=date(2026, 12, 31), by="client").totals == []
    mine = selectors.fee_revenue(user=advisor2, start=date(2026, 1, 1), end=date(2026, 12, 31), by="advisor")
    assert [(r.label, r.revenue) for r in mine.rows] == [("advisor2@acme.test", D("1260.27"))]


def test_bad_revenue_dimension_is_a_400_naming_it(owner_client):
    response = owner_client.get("/api/v1/fee-revenue/?start=2026-01-01&end=2026-12-31&by=planet")
    assert response.status_code == 400 and "by" in response.json()["error"]["details"]


def test_revenue_in_two_currencies_is_never_added_up(owner, owner_client, issued, client_contact):
    eur_schedule = fee_services.fee_schedule_create(
        name="Euro",
        currency="EUR",
        effective_from=date(2020, 1, 1),
        method="tiered",
        tiers=[{"upto": None, "bps": "100"}],
    )
    eur_product = fee_services.product_create(name="Euro mandate", currency="EUR", fee_schedule=eur_schedule)
    e = account(owner, client_contact, {date(2026, 6, 1): "365000"}, currency="EUR", name="Ada EUR")
    group = fee_services.billing_group_create(name="Ada EUR", client=client_contact, portfolios=[e])
    fee_services.subscription_create(group=group, product=eur_product, starts_on=date(2026, 6, 1))
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 2))
    revenue = selectors.fee_revenue(user=owner, start=date(2026, 10, 1), end=date(2026, 10, 31), by="month")
    # 365,000 at 1 %: 3,650 a year x 92 / 365 = 920.00 EUR, beside 4,347.94 USD
    assert [(r.key, r.currency, r.revenue) for r in revenue.rows] == [
        ("2026-10", "EUR", D("920.00")),
        ("2026-10", "USD", D("4347.94")),
    ]
    assert [(t.currency, t.revenue) for t in revenue.totals] == [("EUR", D("920.00")), ("USD", D("4347.94"))]
    page = owner_client.get("/fees/revenue/?start=2026-10-01&end=2026-10-31&by=month").content.decode()
    assert "€920.00" in page and "$4,347.94" in page
    lines = owner_client.get("/fees/revenue.csv?start=2026-10-01&end=2026-10-31&by=month").content.decode().splitlines()
    assert lines[-2:] == ["total,EUR,920.00,,", "total,USD,4347.94,,"]
