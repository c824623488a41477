"""The fee engine's rules, each with a worked example computed by hand in the test (docs/fees.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from fractions import Fraction

import pytest

from fees import engine
from fees.engine import DayCount, FeeRuleError, Method, Schedule, Tier

# 1.00 % on the first 1,000,000, 0.75 % on the next 4,000,000, 0.50 % above 5,000,000.
TIERS = (Tier(D("1000000"), D("100")), Tier(D("5000000"), D("75")), Tier(None, D("50")))
Q1 = {"period_start": date(2026, 1, 1), "period_end": date(2026, 3, 31), "frequency": "quarterly"}


def schedule(method=Method.TIERED, **kw) -> Schedule:
    return Schedule(method=method, tiers=TIERS, **kw)


def test_tiered_charges_each_slice_at_its_own_rate():
    # 2,000,000: 1,000,000 x 1.00 % = 10,000 + 1,000,000 x 0.75 % = 7,500 -> 17,500 a year.
    annual, hits = engine.asset_fee(D("2000000"), schedule())
    assert annual == 17_500
    assert [(h.bps, h.charged_value) for h in hits] == [(D("100"), 1_000_000), (D("75"), 1_000_000)]


def test_blended_charges_the_whole_balance_at_the_tier_reached():
    # 2,000,000 reaches the 0.75 % tier: 2,000,000 x 0.75 % = 15,000 a year.
    annual, hits = engine.asset_fee(D("2000000"), schedule(Method.BLENDED))
    assert annual == 15_000
    assert len(hits) == 1 and hits[0].bps == D("75")


def test_tiered_above_the_last_bound_uses_every_tier():
    # 6,000,000: 10,000 + 4,000,000 x 0.75 % = 30,000 + 1,000,000 x 0.50 % = 5,000 -> 45,000.
    assert engine.asset_fee(D("6000000"), schedule())[0] == 45_000
    # blended: 6,000,000 x 0.50 % = 30,000
    assert engine.asset_fee(D("6000000"), schedule(Method.BLENDED))[0] == 30_000


def test_a_value_on_a_tier_bound_belongs_to_the_lower_tier_when_blended():
    # exactly 1,000,000 -> 1.00 %: 10,000
    assert engine.asset_fee(D("1000000"), schedule(Method.BLENDED))[0] == 10_000


def test_quarter_fee_actual_365():
    # 2,000,000 tiered = 17,500 a year; Q1 2026 has 31+28+31 = 90 days: 17,500 x 90/365 = 4,315.068... -> 4,315.07
    result = engine.fee_for(
        value=D("2000000"),
        schedule=schedule(),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.ACTUAL_365,
        currency="USD",
        **Q1,
    )
    assert result.days == 90 and result.period_days == 90
    assert result.fee == D("4315.07")
    assert result.effective_bps == Fraction(175, 2)  # 17,500 / 2,000,000 = 87.5 bps


def test_quarter_fee_quarter_is_a_quarter_of_a_year():
    # 17,500 / 4 = 4,375.00 whatever the quarter's length.
    result = engine.fee_for(
        value=D("2000000"),
        schedule=schedule(),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    )
    assert result.fee == D("4375.00")


def test_average_daily_balance_with_a_mid_period_deposit():
    # A 30-day month (April 2026): 1,000,000 for 10 days, then a 500,000 deposit on day 11:
    # 1,500,000 for 20 days. ADB = (10 x 1,000,000 + 20 x 1,500,000) / 30 = 1,333,333.33...
    balances = [D("1000000")] * 10 + [D("1500000")] * 20
    adb = engine.average_daily_balance(balances)
    assert adb == Fraction(4_000_000, 3)
    # Tiered: 10,000 + 333,333.33 x 0.75 % = 2,500 -> 12,500 a year; x 30/365 = 1,027.397... -> 1,027.40
    result = engine.fee_for(
        value=adb,
        schedule=schedule(),
        period_start=date(2026, 4, 1),
        period_end=date(2026, 4, 30),
        billed_from=date(2026, 4, 1),
        billed_to=date(2026, 4, 30),
        frequency="monthly",
        day_count=DayCount.ACTUAL_365,
        currency="USD",
    )
    assert result.annual == 12_500
    assert result.fee == D("1027.40")


def test_inception_pro_rata_by_days_held():
    # Subscribed on 15 February 2026: Q1 billed from 15 Feb to 31 Mar = 14 + 31 = 45 days.
    member = engine.billed_days(
        period_start=date(2026, 1, 1), period_end=date(2026, 3, 31), starts=date(2026, 2, 15), ends=None
    )
    assert member is not None and member.billed_from == date(2026, 2, 15)
    # 1,000,000 at 1 % = 10,000 a year; actual/365: 10,000 x 45/365 = 1,232.876... -> 1,232.88
    result = engine.fee_for(
        value=D("1000000"),
        schedule=schedule(),
        billed_from=member.billed_from,
        billed_to=member.billed_to,
        day_count=DayCount.ACTUAL_365,
        currency="USD",
        **Q1,
    )
    assert result.days == 45 and result.fee == D("1232.88")
    # quarter = 1/4: 10,000 / 4 x 45/90 = 1,250.00
    result = engine.fee_for(
        value=D("1000000"),
        schedule=schedule(),
        billed_from=member.billed_from,
        billed_to=member.billed_to,
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    )
    assert result.fee == D("1250.00")


def test_termination_pro_rata():
    member = engine.billed_days(
        period_start=date(2026, 1, 1), period_end=date(2026, 3, 31), starts=date(2025, 1, 1), ends=date(2026, 1, 31)
    )
    assert member is not None and (member.billed_from, member.billed_to) == (date(2026, 1, 1), date(2026, 1, 31))
    assert member.notes == ["termination 2026-01-31"]
    assert (
        engine.billed_days(
            period_start=date(2026, 4, 1), period_end=date(2026, 6, 30), starts=date(2025, 1, 1), ends=date(2026, 1, 31)
        )
        is None
    )


def test_householding_reaches_a_lower_tier_and_allocates_by_value():
    # Two accounts, 600,000 and 900,000. Alone (tiered, a year): 6,000 + (10,000 + 500,000 x 0.75 % = 13,750) = 19,750.
    alone = sum(engine.asset_fee(v, schedule())[0] for v in (D("600000"), D("1500000") - D("600000")))
    assert alone == 6_000 + 9_000  # each under 1,000,000: 1 % of 600,000 and of 900,000 = 15,000
    # Together, 1,500,000: 10,000 + 500,000 x 0.75 % = 3,750 -> 13,750 a year (saves 1,250).
    together, _ = engine.asset_fee(D("1500000"), schedule())
    assert together == 13_750
    # Q1 quarter = 1/4: 3,437.50 allocated by value 600:900 = 2:3 -> 1,375.00 and 2,062.50.
    fee = engine.fee_for(
        value=D("1500000"),
        schedule=schedule(),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    ).fee
    assert fee == D("3437.50")
    assert engine.allocate(fee, [D("600000"), D("900000")], currency="USD") == [D("1375.00"), D("2062.50")]


def test_allocation_adds_up_exactly_by_largest_remainder():
    # 100.00 over three equal accounts: 33.34, 33.33, 33.33 (the first gets the odd cent).
    parts = engine.allocate(D("100.00"), [1, 1, 1], currency="USD")
    assert parts == [D("33.34"), D("33.33"), D("33.33")] and sum(parts) == D("100.00")
    # nothing billable anywhere: equal shares
    assert engine.allocate(D("10.00"), [0, 0], currency="USD") == [D("5.00"), D("5.00")]


def test_minimum_fee_applies_to_a_small_account():
    # 100,000 at 1 % = 1,000 a year, minimum 2,500 a year: quarter = 1/4 -> 625.00, minimum flagged.
    result = engine.fee_for(
        value=D("100000"),
        schedule=schedule(minimum_annual=D("2500")),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    )
    assert result.minimum_applied and result.annual == 2_500 and result.fee == D("625.00")


def test_maximum_fee_caps_a_large_account():
    result = engine.fee_for(
        value=D("6000000"),
        schedule=schedule(maximum_annual=D("40000")),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    )
    assert result.maximum_applied and result.fee == D("10000.00")


def test_flat_annual_fee_adds_to_the_asset_fee():
    # 1,000,000 -> 10,000 + flat 1,200 = 11,200 a year; quarter = 2,800.00
    result = engine.fee_for(
        value=D("1000000"),
        schedule=schedule(flat_annual=D("1200")),
        billed_from=date(2026, 1, 1),
        billed_to=date(2026, 3, 31),
        day_count=DayCount.QUARTER,
        currency="USD",
        **Q1,
    )
    assert result.fee == D("2800.00")


def test_in_advance_bills_on_the_prior_close():
    # Q2 2026 in advance: the value measured is the close of 31 March (the prior period's end).
    assert engine.prior_period(date(2026, 4, 1), "quarterly") == (date(2026, 1, 1), date(2026, 3, 31))
    assert engine.prior_period(date(2026, 1, 1), "monthly") == (date(2025, 12, 1), date(2025, 12, 31))
    # Close 2,000,000 -> 17,500 a year; Q2 has 30+31+30 = 91 days: 17,500 x 91/365 = 4,363.013... -> 4,363.01
    result = engine.fee_for(
        value=D("2000000"),
        schedule=schedule(),
        period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30),
        billed_from=date(2026, 4, 1),
        billed_to=date(2026, 6, 30),
        frequency="quarterly",
        day_count=DayCount.ACTUAL_365,
        currency="USD",
    )
    assert result.fee == D("4363.01")


def test_a_negative_balance_bills_nothing():
    assert engine.asset_fee(D("-5000"), schedule())[0] == 0


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ((Tier(D("5000000"), D("75")), Tier(D("1000000"), D("100")), Tier(None, D("50"))), "tiers[1].upto"),
        ((Tier(D("1000000"), D("100")), Tier(D("1000000"), D("75")), Tier(None, D("50"))), "tiers[1].upto"),
        ((Tier(D("1000000"), D("-1")), Tier(None, D("50"))), "tiers[0].bps"),
        ((Tier(None, D("100")), Tier(None, D("50"))), "tiers[0].upto"),
        ((Tier(D("1000000"), D("100")),), "tiers[0].upto"),
        ((), "tiers"),
    ],
)
def test_bad_tiers_are_refused_naming_the_tier(tiers, field):
    with pytest.raises(FeeRuleError) as caught:
        engine.validate_tiers(tiers)
    assert caught.value.field == field


def test_maximum_below_minimum_is_refused():
    with pytest.raises(FeeRuleError) as caught:
        engine.validate_schedule(schedule(minimum_annual=D("100"), maximum_annual=D("50")))
    assert caught.value.field == "maximum_annual"


@pytest.mark.parametrize(
    ("start", "end", "frequency", "field"),
    [
        (date(2026, 1, 2), date(2026, 3, 31), "quarterly", "period_start"),
        (date(2026, 2, 1), date(2026, 4, 30), "quarterly", "period_start"),
        (date(2026, 1, 1), date(2026, 3, 30), "quarterly", "period_end"),
        (date(2026, 1, 1), date(2026, 2, 28), "monthly", "period_end"),
    ],
)
def test_a_period_that_is_not_a_whole_month_or_quarter_is_refused(start, end, frequency, field):
    with pytest.raises(FeeRuleError) as caught:
        engine.period_check(start, end, frequency)
    assert caught.value.field == field


def test_whole_periods_pass():
    engine.period_check(date(2026, 1, 1), date(2026, 3, 31), "quarterly")
    engine.period_check(date(2024, 2, 1), date(2024, 2, 29), "monthly")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        engine.validate_tiers([Tier(1000.0, D("1"))])  # type: ignore[arg-type]


def test_gross_adds_the_fee_back_net_treats_it_as_a_cost():
    # 100,000 at the start; day 1 +2 % (102,000); day 2 a 500 fee is deducted (101,500); day 3 flat.
    days = [(D("102000"), D(0), D(0)), (D("101500"), D(0), D("500")), (D("101500"), D(0), D(0))]
    result = engine.gross_and_net_twr(D("100000"), days)
    # net: 1.02 x 101,500/102,000 - 1 = 1.015 - 1 = 1.5 %; gross: 1.02 x 1 - 1 = 2 %
    assert result.net == Fraction(15, 1000) and result.gross == Fraction(2, 100) and result.fees == 500
    # a deposit is a flow in both: 1,000 in on day 1 does not count as a return
    flows = engine.gross_and_net_twr(D("100000"), [(D("101000"), D("1000"), D(0))])
    assert flows.net == 0 and flows.gross == 0
