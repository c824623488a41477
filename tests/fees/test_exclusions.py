"""Exclusions in fee schedules: instruments and asset classes taken out of the billable value,
day by day, with worked examples computed by hand (docs/fees.md, "Exclusions"); bad input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from fees import services as fee_services
from fees.models import FeeSchedule
from portfolios import services as portfolio_services
from portfolios.market.models import Instrument
from portfolios.positions import portfolios_positions_closes
from tests.fees.conftest import TIERS, account
from tests.portfolios.factories import InstrumentFactory, add_prices

pytestmark = pytest.mark.django_db

Q3 = {"period_start": date(2026, 7, 1), "period_end": date(2026, 9, 30), "frequency": "quarterly"}


def _days(first: date, last: date, close: str) -> dict[date, str]:
    return {first + timedelta(days=i): close for i in range((last - first).days + 1)}


def _buy(portfolio, instrument, day: date, quantity: str, price: str) -> None:
    portfolio_services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=day,
        instrument=instrument,
        quantity=quantity,
        price=price,
        currency=instrument.currency,
    )


def _line(owner, group):
    run = fee_services.fee_run_preview(actor=owner, **Q3)
    item = run.items.get(group=group)
    assert not item.problems, item.problems
    return item.lines[0]


@pytest.fixture
def legacy(firm):
    """A client's legacy holding the firm does not bill: 100 through August, 120 from September
    (a close every day: a position without a recent close holds its account back, decision 1203)."""
    instrument = InstrumentFactory(symbol="LEGACY", currency="USD")
    add_prices(
        instrument,
        {**_days(date(2026, 8, 1), date(2026, 8, 31), "100"), **_days(date(2026, 9, 1), date(2026, 12, 31), "120")},
    )
    return instrument


def test_average_daily_balance_with_an_excluded_instrument(owner, client_contact, legacy):
    # 1,000,000 of cash from 1 June; 1,000 LEGACY bought at 100 on 1 August (cash 900,000);
    # LEGACY closes at 120 from 1 September.
    ada = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    _buy(ada, legacy, date(2026, 8, 1), "1000", "100")
    schedule = fee_services.fee_schedule_create(
        name="Ex legacy",
        effective_from=date(2020, 1, 1),
        method="tiered",
        tiers=TIERS,
        excluded_instruments=[legacy.pk],
    )
    product = fee_services.product_create(name="Managed ex legacy", fee_schedule=schedule)
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[ada])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))

    line = _line(owner, group)
    # Billable per day: July 1,000,000 (31 days); August 1,000,000 - 100,000 = 900,000 (31);
    # September 1,020,000 - 120,000 = 900,000 (30).
    # ADB = (31 x 1,000,000 + 61 x 900,000) / 92 = 85,900,000 / 92 = 933,695.652...
    assert line["billable_value"] == "933695.65"
    # all under the 1 % tier: 9,336.9565... a year; x 92/365 = 859,000 / 365 = 2,353.424... -> 2,353.42
    assert line["fee"] == "2353.42"


def test_the_same_account_without_the_exclusion_bills_the_holding(owner, client_contact, legacy, product):
    ada = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    _buy(ada, legacy, date(2026, 8, 1), "1000", "100")
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[ada])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    line = _line(owner, group)
    # ADB = (62 x 1,000,000 + 30 x 1,020,000) / 92 = 1,006,521.739...
    assert line["billable_value"] == "1006521.74"
    # 10,000 + 6,521.739... x 0.75 % a year; x 92/365 = 2,520.547... + 4,500/365 = 2,532.88
    assert line["fee"] == "2532.88"


def test_period_end_value_with_an_excluded_asset_class(owner, client_contact):
    # 2,000,000 of cash from 1 June; on 15 July 5,000 units of a bond at 100 (500,000) and
    # 2,000 shares at 50 (100,000); on 30 September the bond closes at 98, the shares at 55.
    bond = InstrumentFactory(symbol="BOND26", asset_class="bond")
    shares = InstrumentFactory(symbol="SHARE26", asset_class="equity")
    add_prices(bond, {date(2026, 7, 15): "100", date(2026, 9, 30): "98"})
    add_prices(shares, {date(2026, 7, 15): "50", date(2026, 9, 30): "55"})
    ada = account(owner, client_contact, {date(2026, 6, 1): "2000000"}, name="Ada main")
    _buy(ada, bond, date(2026, 7, 15), "5000", "100")
    _buy(ada, shares, date(2026, 7, 15), "2000", "50")
    schedule = fee_services.fee_schedule_create(
        name="Ex bonds", effective_from=date(2020, 1, 1), method="tiered", tiers=TIERS, excluded_asset_classes=["bond"]
    )
    product = fee_services.product_create(name="Equity mandate", fee_schedule=schedule)
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[ada])
    fee_services.subscription_create(
        group=group, product=product, starts_on=date(2026, 6, 1), timing="arrears_end", day_count="quarter"
    )
    line = _line(owner, group)
    # 30 September: cash 1,400,000 + bond 490,000 + shares 110,000 = 2,000,000; less the bond:
    # 1,510,000 billable. Tiered: 10,000 + 510,000 x 0.75 % = 13,825 a year; a quarter = 3,456.25.
    assert line["billable_value"] == "1510000.00"
    assert line["annual_fee"] == "13825.00" and line["fee"] == "3456.25"


def test_excluded_positions_are_valued_like_the_store(owner, client_contact, legacy):
    ada = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    _buy(ada, legacy, date(2026, 8, 1), "1000", "100")
    closes = portfolios_positions_closes(
        portfolios=[ada], start=date(2026, 7, 31), end=date(2026, 9, 2), instrument_ids={legacy.pk}, asset_classes=set()
    )[ada.pk]
    assert closes[date(2026, 7, 31)] == 0
    assert closes[date(2026, 8, 1)] == D("100000") and closes[date(2026, 9, 2)] == D("120000")
    assert len(closes) == 34  # every calendar day


def test_an_unknown_instrument_is_refused_naming_the_field(firm):
    with pytest.raises(ValidationError) as exc:
        fee_services.fee_schedule_create(
            name="Bad",
            effective_from=date(2020, 1, 1),
            method="tiered",
            tiers=TIERS,
            excluded_instruments=[999_999_999],
        )
    assert "excluded_instruments[0]" in exc.value.message_dict
    assert not FeeSchedule.objects.filter(name="Bad").exists()


def test_another_firms_own_instrument_is_unknown_here(firm, other_firm):
    theirs = Instrument.all_objects.create(
        symbol="GLOBEXOWN", name="Globex own", currency="USD", owner=other_firm.schema_name
    )
    with pytest.raises(ValidationError) as exc:
        fee_services.fee_schedule_create(
            name="Bad", effective_from=date(2020, 1, 1), method="tiered", tiers=TIERS, excluded_instruments=[theirs.pk]
        )
    assert "excluded_instruments[0]" in exc.value.message_dict


def test_an_unknown_asset_class_is_refused_naming_the_field(firm, schedule):
    with pytest.raises(ValidationError) as exc:
        fee_services.fee_schedule_change(
            schedule=schedule, effective_from=date(2026, 8, 15), excluded_asset_classes=["bond", "stamps"]
        )
    assert "excluded_asset_classes[1]" in exc.value.message_dict
    assert [v.effective_from for v in schedule.versions.all()] == [date(2020, 1, 1)]  # nothing written


def test_api_refuses_an_unknown_asset_class_naming_the_field(owner, client_for):
    api = client_for(owner)
    body = {
        "name": "Ex stamps",
        "effective_from": "2026-01-01",
        "method": "tiered",
        "tiers": TIERS,
        "excluded_asset_classes": ["stamps"],
    }
    response = api.post("/api/v1/fee-schedules/", body, content_type="application/json")
    assert response.status_code == 400
    assert "excluded_asset_classes" in response.json()["error"]["details"]


def test_api_creates_a_schedule_with_exclusions(owner, client_for, legacy):
    api = client_for(owner)
    body = {
        "name": "Ex legacy API",
        "effective_from": "2026-01-01",
        "method": "tiered",
        "tiers": TIERS,
        "excluded_instruments": [legacy.pk],
        "excluded_asset_classes": ["crypto"],
    }
    response = api.post("/api/v1/fee-schedules/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    (version,) = response.json()["versions"]
    assert version["excluded_instruments"] == [legacy.pk]
    assert version["excluded_asset_classes"] == ["crypto"]
    assert version["effective_from"] == "2026-01-01"


def test_api_dated_version_changes_exclusions_owner_only(owner, advisor, client_for, schedule):
    url = f"/api/v1/fee-schedules/{schedule.pk}/versions/"
    body = {"effective_from": "2026-08-15", "excluded_asset_classes": ["real_estate"], "exclude_cash": True}
    refused = client_for(advisor).post(url, body, content_type="application/json")
    assert refused.status_code == 403
    bad = client_for(owner).post(
        url, {"effective_from": "2026-08-15", "excluded_instruments": [999_999_999]}, content_type="application/json"
    )
    assert bad.status_code == 400 and "excluded_instruments[0]" in bad.json()["error"]["details"]
    response = client_for(owner).post(url, body, content_type="application/json")
    assert response.status_code == 201, response.content
    new = schedule.versions.get(effective_from=date(2026, 8, 15))
    assert new.excluded_asset_classes == ["real_estate"] and new.exclude_cash
    # the terms are carried over; the version before keeps its (empty) exclusions
    old = schedule.versions.get(effective_from=date(2020, 1, 1))
    assert new.tiers == old.tiers and new.method == old.method
    assert old.excluded_asset_classes == [] and not old.exclude_cash


def test_api_patch_refuses_dated_terms_naming_the_field(owner, client_for, schedule):
    # Undated exclusions on the PATCH are API v1's compatibility path (tests/fees/test_api_v1_compat.py).
    response = client_for(owner).patch(
        f"/api/v1/fee-schedules/{schedule.pk}/",
        {"effective_from": "2026-08-15", "tiers": TIERS},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert {"effective_from", "tiers"} <= set(response.json()["error"]["details"])
    assert schedule.versions.count() == 1


def test_another_firm_cannot_reach_a_schedule_through_the_api(outsider, client_for, other_firm, schedule):
    api = client_for(outsider, other_firm)
    assert api.get(f"/api/v1/fee-schedules/{schedule.pk}/").status_code == 404
    patch = api.patch(f"/api/v1/fee-schedules/{schedule.pk}/", {"archived": True}, content_type="application/json")
    assert patch.status_code == 404
