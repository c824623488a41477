"""Exclusions with effective dates (decision 1200, docs/fees.md "Exclusions with effective
dates"): a change applies from its date, day by day for average daily balance; a run for an
earlier period keeps the exclusions in force then; history shows every version. Hand-computed."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from codex import formatting
from codex.formatting import display_preferences
from fees import services as fee_services
from fees.services import FeeStateConflict
from portfolios import services as portfolio_services
from tests.fees.conftest import TIERS, account
from tests.portfolios.factories import InstrumentFactory, add_prices

pytestmark = pytest.mark.django_db

Q2 = {"period_start": date(2026, 4, 1), "period_end": date(2026, 6, 30), "frequency": "quarterly"}
Q3 = {"period_start": date(2026, 7, 1), "period_end": date(2026, 9, 30), "frequency": "quarterly"}
Q4 = {"period_start": date(2026, 10, 1), "period_end": date(2026, 12, 31), "frequency": "quarterly"}


@pytest.fixture
def ada(owner, client_contact):
    """1,000,000 deposited on 1 June; 1,000 LEGACY bought at 100 the same day (cash 900,000);
    LEGACY closes at 100 every day, so the account is worth 1,000,000 every day."""
    legacy = InstrumentFactory(symbol="LEGACYD", currency="USD")
    add_prices(legacy, {date(2026, 6, 1) + timedelta(days=i): "100" for i in range(214)})  # to 31 December
    portfolio = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    portfolio_services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=date(2026, 6, 1),
        instrument=legacy,
        quantity="1000",
        price="100",
        currency="USD",
    )
    return portfolio, legacy


def _subscribed(client_contact, portfolio, schedule, timing="arrears_adb"):
    product = fee_services.product_create(name=f"Mandate {timing}", fee_schedule=schedule)
    group = fee_services.billing_group_create(name=f"Ada {timing}", client=client_contact, portfolios=[portfolio])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), timing=timing)
    return group


def _line(owner, group, period):
    item = fee_services.fee_run_preview(actor=owner, **period).items.get(group=group)
    assert not item.problems, item.problems
    return item.lines[0]


def test_an_exclusion_added_mid_quarter_applies_per_day_from_its_date(owner, client_contact, ada, schedule):
    portfolio, legacy = ada
    group = _subscribed(client_contact, portfolio, schedule)
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 8, 16), excluded_instruments=[legacy.pk]
    )
    line = _line(owner, group, Q3)
    # 1 July - 15 August: 31 + 15 = 46 days at 1,000,000 (nothing excluded yet);
    # 16 August - 30 September: 16 + 30 = 46 days at 1,000,000 - 100,000 = 900,000.
    # ADB = (46 x 1,000,000 + 46 x 900,000) / 92 = 950,000.
    assert line["billable_value"] == "950000.00"
    # 1 % a year (under the first tier): 9,500 x 92 / 365 = 874,000 / 365 = 2,394.520... -> 2,394.52
    assert line["fee"] == "2394.52"


def test_a_run_for_an_earlier_period_keeps_the_exclusions_in_force_then(owner, client_contact, ada, schedule):
    portfolio, legacy = ada
    group = _subscribed(client_contact, portfolio, schedule)
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 8, 16), excluded_instruments=[legacy.pk]
    )
    line = _line(owner, group, Q2)
    # Q2 from inception on 1 June: 30 days at 1,000,000 (LEGACY still billable then):
    # 10,000 x 30 / 365 = 821.917... -> 821.92 (with the later exclusion it would be 739.73).
    assert line["billable_value"] == "1000000.00" and line["fee"] == "821.92"


def test_period_end_uses_the_exclusions_of_the_last_billed_day(owner, client_contact, ada, schedule):
    portfolio, legacy = ada
    group = _subscribed(client_contact, portfolio, schedule, timing="arrears_end")
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 9, 30), excluded_instruments=[legacy.pk]
    )
    line = _line(owner, group, Q3)
    # 30 September: 1,000,000 less LEGACY's 100,000 = 900,000; 9,000 x 92 / 365 = 2,268.493... -> 2,268.49
    assert line["billable_value"] == "900000.00" and line["fee"] == "2268.49"


def test_in_advance_uses_the_exclusions_of_the_billed_periods_first_day(owner, client_contact, ada, schedule):
    portfolio, legacy = ada
    group = _subscribed(client_contact, portfolio, schedule, timing="advance")
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 10, 1), excluded_instruments=[legacy.pk]
    )
    # Q4 in advance is measured on the close of 30 September, with the exclusions in force on
    # 1 October (the period the fee is for): 900,000; 9,000 x 92 / 365 = 2,268.49.
    q4 = _line(owner, group, Q4)
    assert q4["billable_value"] == "900000.00" and q4["fee"] == "2268.49"
    # Q3 in advance (close of 30 June, exclusions of 1 July: none): 10,000 x 92 / 365 = 2,520.55
    q3 = _line(owner, group, Q3)
    assert q3["billable_value"] == "1000000.00" and q3["fee"] == "2520.55"


def test_cash_exclusion_is_dated_too(owner, client_contact, ada, schedule):
    portfolio, _ = ada
    group = _subscribed(client_contact, portfolio, schedule)
    fee_services.fee_schedule_change(schedule=schedule, effective_from=date(2026, 9, 1), exclude_cash=True)
    line = _line(owner, group, Q3)
    # July and August (62 days) 1,000,000; September (30 days) 1,000,000 - 900,000 cash = 100,000.
    # ADB = (62 x 1,000,000 + 30 x 100,000) / 92 = 65,000,000 / 92 = 706,521.739...
    assert line["billable_value"] == "706521.74"
    # 1 %: 7,065.217... x 92 / 365 = 650,000 / 365 = 1,780.821... -> 1,780.82
    assert line["fee"] == "1780.82"


def test_a_change_carries_over_what_it_leaves_out(firm, schedule):
    bond_only = fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 7, 1), excluded_asset_classes=["bond"], exclude_cash=True
    )
    terms_only = fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 10, 1), method="blended", tiers=[{"upto": None, "bps": "50"}]
    )
    assert bond_only.tiers == TIERS and bond_only.method == "tiered"
    assert terms_only.excluded_asset_classes == ["bond"] and terms_only.exclude_cash
    assert terms_only.tiers == [{"upto": None, "bps": "50"}]
    first = schedule.versions.get(effective_from=date(2020, 1, 1))
    assert first.excluded_asset_classes == [] and not first.exclude_cash  # history kept


def test_a_second_version_on_the_same_date_is_refused_naming_the_field(firm, schedule):
    fee_services.fee_schedule_change(schedule=schedule, effective_from=date(2026, 7, 1), exclude_cash=True)
    with pytest.raises(FeeStateConflict) as exc:
        fee_services.fee_schedule_change(schedule=schedule, effective_from=date(2026, 7, 1), exclude_cash=False)
    assert "effective_from" in exc.value.message_dict
    assert schedule.versions.get(effective_from=date(2026, 7, 1)).exclude_cash  # unchanged


def test_a_change_without_a_date_or_with_an_unknown_field_is_refused(firm, schedule):
    with pytest.raises(ValidationError) as exc:
        fee_services.fee_schedule_change(schedule=schedule, effective_from=None, exclude_cash=True)
    assert "effective_from" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        fee_services.fee_schedule_change(schedule=schedule, effective_from=date(2026, 7, 1), excluded_sectors=["x"])
    assert "excluded_sectors" in exc.value.message_dict
    assert schedule.versions.count() == 1


def test_api_refuses_a_duplicate_date_with_409_naming_the_field(owner, client_for, schedule):
    url = f"/api/v1/fee-schedules/{schedule.pk}/versions/"
    response = client_for(owner).post(
        url, {"effective_from": "2020-01-01", "exclude_cash": True}, content_type="application/json"
    )
    assert response.status_code == 409, response.content
    assert "effective_from" in response.json()["error"]["details"]
    assert (
        client_for(owner).post(url, {"effective_from": "2026-07-01"}, content_type="application/json").status_code
        == 201
    )


def test_api_and_page_show_each_version_with_its_exclusions_and_dates(owner, owner_client, client_for, schedule, ada):
    _, legacy = ada
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 8, 16), excluded_instruments=[legacy.pk]
    )
    body = client_for(owner).get(f"/api/v1/fee-schedules/{schedule.pk}/").json()
    assert [(v["effective_from"], v["excluded_instruments"]) for v in body["versions"]] == [
        ("2026-08-16", [legacy.pk]),
        ("2020-01-01", []),
    ]
    page = owner_client.get(f"/fees/schedules/{schedule.pk}/").content.decode()
    assert "instruments: LEGACYD" in page and "nothing" in page  # the new version's exclusions, the old one's none
    with display_preferences(user=owner):
        ends = formatting.date(date(2026, 8, 15))  # the old version ends the day before the new one
    assert f"<td>{ends}</td>" in page


def test_page_adds_a_dated_version_with_exclusions(owner_client, schedule, ada):
    _, legacy = ada
    data = {
        "action": "terms",
        "terms-effective_from": "2026-08-16",
        "terms-method": "tiered",
        "terms-excluded_instruments": [legacy.pk],
        "terms-exclude_cash": "on",
        "tiers-upto_0": "1000000",
        "tiers-bps_0": "100",
        "tiers-bps_1": "75",
    }
    response = owner_client.post(f"/fees/schedules/{schedule.pk}/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    version = schedule.versions.get(effective_from=date(2026, 8, 16))
    assert [i.pk for i in version.excluded_instruments.all()] == [legacy.pk] and version.exclude_cash
    again = owner_client.post(f"/fees/schedules/{schedule.pk}/", data)
    assert again.status_code == 200 and "exists already" in again.content.decode()


def test_another_firm_cannot_add_a_version(outsider, client_for, other_firm, schedule):
    api = client_for(outsider, other_firm)
    response = api.post(
        f"/api/v1/fee-schedules/{schedule.pk}/versions/",
        {"effective_from": "2026-07-01"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert schedule.versions.count() == 1


def test_a_total_fee_is_decimal_with_the_groups_currency(owner, client_contact, ada, schedule):
    portfolio, legacy = ada
    group = _subscribed(client_contact, portfolio, schedule)
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 8, 16), excluded_instruments=[legacy.pk]
    )
    item = fee_services.fee_run_preview(actor=owner, **Q3).items.get(group=group)
    assert item.total == D("2394.52") and item.currency == "USD"
