"""Table-driven tests of the pure billing modules: money, proration, webhook signatures, dunning.

No Django here: run with ``python -m pytest -p no:django tests/billing/test_pure.py``.
Every expected number is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.dunning import DunningPolicy, DunningStatus, dunning_decide
from billing.money import (
    CURRENCY_EXPONENTS,
    LineInput,
    UnknownCurrency,
    compute_invoice_totals,
    currency_exponent,
    quantize_money,
)
from billing.proration import (
    Interval,
    ProrationError,
    add_months,
    period_bounds,
    prorate,
    prorate_plan_change,
)
from billing.signatures import (
    BadSignature,
    MalformedSignature,
    SignatureError,
    StaleSignature,
    sign_payload,
    verify_signature,
)

D = Decimal
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DAY = 86_400


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Money: currency exponents and rounding
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("usd", 2),  # Stripe sends lower case
        ("GBP", 2),
        ("CHF", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("CLP", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
        ("CLF", 4),
    ],
)
def test_currency_exponent_follows_iso_4217(code, exponent):
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["XYZ", "EURO", "EU", "", "€", "XAU"])
def test_unknown_currency_is_rejected_not_assumed_two_decimals(code):
    with pytest.raises(UnknownCurrency):
        currency_exponent(code)


def test_unknown_currency_is_a_value_error_and_non_str_a_type_error():
    assert issubclass(UnknownCurrency, ValueError)
    with pytest.raises(TypeError):
        currency_exponent(978)


def test_exponent_table_only_holds_plausible_codes():
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in CURRENCY_EXPONENTS)
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3, 4}


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # Halves go away from zero (ROUND_HALF_UP), on both signs.
        ("0.125", "EUR", "0.13"),
        ("-0.125", "EUR", "-0.13"),
        ("0.005", "EUR", "0.01"),
        ("-0.005", "EUR", "-0.01"),
        # Banker's rounding would give 24.98 (8 is even); half-up gives 24.99.
        ("24.985", "EUR", "24.99"),
        # A float 2.675 is 2.67499999... and would round to 2.67; the Decimal is exact.
        ("2.675", "EUR", "2.68"),
        # Just below a half goes down, however close.
        ("0.1249999999999999999999999999999", "EUR", "0.12"),
        ("0.12500000000000000000000000000001", "EUR", "0.13"),
        # Padding to the minor unit.
        ("5", "EUR", "5.00"),
        ("5.1", "EUR", "5.10"),
        # Tiny negatives become 0.00, never -0.00.
        ("-0.004", "EUR", "0.00"),
        # JPY has no minor unit: 1234.5 -> 1235, -0.5 -> -1, 0.49 -> 0.
        ("1234.5", "JPY", "1235"),
        ("-0.5", "JPY", "-1"),
        ("0.49", "JPY", "0"),
        # KWD has three decimals: 1.2345 -> 1.235.
        ("1.2345", "KWD", "1.235"),
        ("1.2344", "KWD", "1.234"),
        # Exponent notation in, plain minor units out.
        ("1E+3", "EUR", "1000.00"),
        ("12345678901234567890123456789.995", "EUR", "12345678901234567890123456790.00"),
    ],
)
def test_quantize_money_rounds_half_up_once(amount, currency, expected):
    result = quantize_money(D(amount), currency)
    assert str(result) == expected


def test_quantize_money_accepts_int():
    assert str(quantize_money(49, "EUR")) == "49.00"
    assert str(quantize_money(4900, "JPY")) == "4900"


@pytest.mark.parametrize("amount", [0.1, 49.0, True, "49.00", None])
def test_quantize_money_refuses_anything_but_decimal_or_int(amount):
    with pytest.raises(TypeError):
        quantize_money(amount, "EUR")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_quantize_money_refuses_non_finite(amount):
    with pytest.raises(ValueError, match="finite"):
        quantize_money(D(amount), "EUR")


@given(
    st.decimals(min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_quantize_money_agrees_with_decimal_quantize_half_up(amount, currency):
    exponent = currency_exponent(currency)
    expected = amount.quantize(D(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    result = quantize_money(amount, currency)
    assert result == expected
    assert result.as_tuple().exponent == -exponent


# --------------------------------------------------------------------------------------------------
# Money: invoice totals
# --------------------------------------------------------------------------------------------------


def lines(*pairs):
    return [LineInput(quantity=q, unit_amount=D(u)) for q, u in pairs]


@pytest.mark.parametrize(
    ("line_pairs", "tax_rate", "currency", "expected_lines", "subtotal", "tax", "total"),
    [
        pytest.param(
            [(1, "49.00")],
            "0.20",
            "EUR",
            ["49.00"],
            "49.00",
            "9.80",  # 49.00 * 0.20 = 9.80
            "58.80",
            id="one-line-20pct",
        ),
        pytest.param(
            # Each line rounds on its own: 0.005 -> 0.01, three times -> 0.03.
            # (Summing first would give 0.015 -> 0.02: the printed lines would not add up.)
            [(1, "0.005"), (1, "0.005"), (1, "0.005")],
            "0",
            "EUR",
            ["0.01", "0.01", "0.01"],
            "0.03",
            "0.00",
            "0.03",
            id="rounded-once-per-line",
        ),
        pytest.param(
            # Tax once on the subtotal: 0.15 * 10 % = 0.015 -> 0.02.
            # (Per-line tax would be 0.005 -> 0.01 three times = 0.03.)
            [(1, "0.05"), (1, "0.05"), (1, "0.05")],
            "0.10",
            "EUR",
            ["0.05", "0.05", "0.05"],
            "0.15",
            "0.02",
            "0.17",
            id="tax-once-on-subtotal",
        ),
        pytest.param(
            # 3 * 33.335 = 100.005 -> 100.01; 1 * 0.004 -> 0.00; 2 * 19.99 = 39.98.
            # Subtotal 139.99; tax 139.99 * 0.20 = 27.998 -> 28.00; total 167.99.
            [(3, "33.335"), (1, "0.004"), (2, "19.99")],
            "0.20",
            "EUR",
            ["100.01", "0.00", "39.98"],
            "139.99",
            "28.00",
            "167.99",
            id="mixed-lines",
        ),
        pytest.param(
            # Fractional quantity: 1.5 h * 33.33 = 49.995 -> 50.00; tax 8.1 % = 4.05.
            [(D("1.5"), "33.33")],
            "0.081",
            "CHF",
            ["50.00"],
            "50.00",
            "4.05",
            "54.05",
            id="fractional-quantity",
        ),
        pytest.param(
            # A plan change invoice: proration credit and charge (Starter -> Pro after 10 of 30
            # days). Subtotal -32.67 + 99.33 = 66.66; tax 20 % = 13.332 -> 13.33; total 79.99.
            [(1, "-32.67"), (1, "99.33")],
            "0.20",
            "EUR",
            ["-32.67", "99.33"],
            "66.66",
            "13.33",
            "79.99",
            id="proration-credit-line",
        ),
        pytest.param(
            # A credit note: -10.05 * 20 % = -2.01; halves away from zero: -0.025 -> -0.03.
            [(1, "-10.05"), (1, "-0.075")],
            "0.20",
            "EUR",
            ["-10.05", "-0.08"],
            "-10.13",
            "-2.03",  # -10.13 * 0.2 = -2.026 -> -2.03
            "-12.16",
            id="negative-subtotal",
        ),
        pytest.param(
            # JPY: 3 seats * 1500 = 4500 plus plan 4900 = 9400; 10 % tax = 940; total 10340.
            [(1, "4900"), (3, "1500")],
            "0.10",
            "JPY",
            ["4900", "4500"],
            "9400",
            "940",
            "10340",
            id="jpy",
        ),
        pytest.param(
            # JPY half: 1234 * 8 % = 98.72 -> 99; 0.5 yen line -> 1.
            [(1, "1234"), (1, "0.5")],
            "0.08",
            "JPY",
            ["1234", "1"],
            "1235",
            "99",  # 1235 * 0.08 = 98.8 -> 99
            "1334",
            id="jpy-rounding",
        ),
        pytest.param(
            # KWD, three decimals: 2 * 1.0005 = 2.001; 5 % tax = 0.10005 -> 0.100.
            [(2, "1.0005")],
            "0.05",
            "KWD",
            ["2.001"],
            "2.001",
            "0.100",
            "2.101",
            id="kwd",
        ),
        pytest.param([], "0.20", "EUR", [], "0.00", "0.00", "0.00", id="no-lines"),
    ],
)
def test_compute_invoice_totals(line_pairs, tax_rate, currency, expected_lines, subtotal, tax, total):
    totals = compute_invoice_totals(lines(*line_pairs), D(tax_rate), currency=currency)
    assert [str(a) for a in totals.line_amounts] == expected_lines
    assert (str(totals.subtotal), str(totals.tax), str(totals.total)) == (subtotal, tax, total)
    assert totals.currency == currency


def test_invoice_totals_accept_any_object_with_quantity_and_unit_amount():
    # e.g. InvoiceLine model rows
    rows = [SimpleNamespace(quantity=2, unit_amount=D("10.005"))]  # 20.01
    totals = compute_invoice_totals(rows, D("0"), currency="usd")
    assert totals.total == D("20.01")
    assert totals.currency == "USD"


@pytest.mark.parametrize(
    ("line", "tax_rate"),
    [
        (LineInput(quantity=1, unit_amount=49.0), D("0.2")),
        (LineInput(quantity=1.5, unit_amount=D("49")), D("0.2")),
        (LineInput(quantity=1, unit_amount=D("49")), 0.2),
    ],
)
def test_invoice_totals_refuse_floats(line, tax_rate):
    with pytest.raises(TypeError):
        compute_invoice_totals([line], tax_rate, currency="EUR")


def test_invoice_totals_refuse_negative_tax_rate_and_unknown_currency():
    with pytest.raises(ValueError, match="tax_rate"):
        compute_invoice_totals(lines((1, "1")), D("-0.1"), currency="EUR")
    with pytest.raises(UnknownCurrency):
        compute_invoice_totals(lines((1, "1")), D("0.1"), currency="EUX")


money_cents = st.integers(min_value=-(10**9), max_value=10**9).map(lambda c: D(c).scaleb(-2))


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=1000),
            st.integers(min_value=-(10**7), max_value=10**7).map(lambda m: D(m).scaleb(-3)),
        ),
        max_size=20,
    ),
    st.integers(min_value=0, max_value=300).map(lambda p: D(p).scaleb(-3)),
)
def test_invoice_totals_always_add_up(pairs, tax_rate):
    totals = compute_invoice_totals([LineInput(quantity=q, unit_amount=u) for q, u in pairs], tax_rate, currency="EUR")
    assert totals.subtotal == sum(totals.line_amounts, D("0"))
    assert totals.total == totals.subtotal + totals.tax
    for figure in (*totals.line_amounts, totals.subtotal, totals.tax, totals.total):
        assert figure.as_tuple().exponent == -2
    # The tax is the subtotal's tax rounded once: within half a cent of the exact figure.
    assert abs(totals.tax - totals.subtotal * tax_rate) <= D("0.005")


# --------------------------------------------------------------------------------------------------
# Proration: period bounds
# --------------------------------------------------------------------------------------------------


# fmt: off
@pytest.mark.parametrize(
    ("anchor", "interval", "at", "start", "end"),
    [
        pytest.param(
            utc(2025, 1, 1), "month", utc(2025, 1, 1), utc(2025, 1, 1), utc(2025, 2, 1),
            id="at-anchor-is-first-period",
        ),
        pytest.param(
            utc(2025, 1, 1), "month", utc(2025, 1, 31, 23, 59, 59), utc(2025, 1, 1),
            utc(2025, 2, 1), id="last-second-of-period",
        ),
        pytest.param(
            utc(2025, 1, 1), "month", utc(2025, 2, 1), utc(2025, 2, 1), utc(2025, 3, 1),
            id="end-is-exclusive",
        ),
        # Anchor on the 31st: Jan 31 -> Feb 28 (clamped) -> Mar 31 (back to the 31st) -> Apr 30.
        pytest.param(
            utc(2025, 1, 31), "month", utc(2025, 2, 15), utc(2025, 1, 31), utc(2025, 2, 28),
            id="anchor-31-january-period",
        ),
        pytest.param(
            utc(2025, 1, 31), "month", utc(2025, 2, 28, 12), utc(2025, 2, 28), utc(2025, 3, 31),
            id="anchor-31-clamps-to-feb-28",
        ),
        pytest.param(
            utc(2025, 1, 31), "month", utc(2025, 3, 31), utc(2025, 3, 31), utc(2025, 4, 30),
            id="anchor-31-returns-to-31-after-feb",
        ),
        pytest.param(
            utc(2024, 1, 31), "month", utc(2024, 2, 29), utc(2024, 2, 29), utc(2024, 3, 31),
            id="anchor-31-clamps-to-feb-29-in-leap-year",
        ),
        pytest.param(
            utc(2024, 1, 30), "month", utc(2024, 2, 29, 23), utc(2024, 2, 29), utc(2024, 3, 30),
            id="anchor-30-clamps-to-feb-29",
        ),
        pytest.param(
            utc(2025, 8, 31), "month", utc(2026, 2, 28), utc(2026, 2, 28), utc(2026, 3, 31),
            id="anchor-31-many-periods-later",
        ),
        # Time of day of the anchor is part of the boundary.
        pytest.param(
            utc(2025, 1, 15, 9, 30), "month", utc(2025, 2, 15, 9, 29, 59),
            utc(2025, 1, 15, 9, 30), utc(2025, 2, 15, 9, 30), id="one-second-before-boundary",
        ),
        pytest.param(
            utc(2025, 1, 15, 9, 30), "month", utc(2025, 2, 15, 9, 30),
            utc(2025, 2, 15, 9, 30), utc(2025, 3, 15, 9, 30), id="exactly-on-boundary",
        ),
        # Yearly, leap years: Feb 29 anchor clamps to Feb 28 in common years.
        pytest.param(
            utc(2024, 2, 29), "year", utc(2025, 2, 27), utc(2024, 2, 29), utc(2025, 2, 28),
            id="yearly-feb-29-first-year",
        ),
        pytest.param(
            utc(2024, 2, 29), "year", utc(2025, 3, 1), utc(2025, 2, 28), utc(2026, 2, 28),
            id="yearly-feb-29-common-year",
        ),
        pytest.param(
            utc(2024, 2, 29), "year", utc(2028, 2, 29), utc(2028, 2, 29), utc(2029, 2, 28),
            id="yearly-feb-29-next-leap-year",
        ),
        pytest.param(
            utc(2024, 6, 15), "year", utc(2030, 1, 1), utc(2029, 6, 15), utc(2030, 6, 15),
            id="yearly-many-years-later",
        ),
        # Before the anchor: the earlier periods of the same sequence (Mar 31 -> Feb 28 -> Jan 31).
        pytest.param(
            utc(2025, 3, 31), "month", utc(2025, 2, 10), utc(2025, 1, 31), utc(2025, 2, 28),
            id="before-anchor",
        ),
        pytest.param(
            utc(2025, 1, 1), Interval.YEAR, utc(2025, 12, 31, 23, 59, 59),
            utc(2025, 1, 1), utc(2026, 1, 1), id="interval-enum",
        ),
    ],
)
def test_period_bounds(anchor, interval, at, start, end):
    assert period_bounds(anchor, interval, at) == (start, end)
# fmt: on


def test_period_bounds_use_the_anchor_time_zone():
    # Anchor: 1 Jan 00:00 in Paris = 31 Dec 23:00 UTC. 31 Dec 23:30 UTC is already January in Paris.
    anchor = datetime(2025, 1, 1, tzinfo=PARIS)
    start, end = period_bounds(anchor, "month", utc(2024, 12, 31, 23, 30))
    assert (start, end) == (datetime(2025, 1, 1, tzinfo=PARIS), datetime(2025, 2, 1, tzinfo=PARIS))
    assert start.tzinfo is PARIS
    # 31 Dec 22:59 UTC is still December in Paris: the previous period.
    assert period_bounds(anchor, "month", utc(2024, 12, 31, 22, 59))[0] == datetime(2024, 12, 1, tzinfo=PARIS)


def test_period_bounds_keep_wall_clock_time_across_dst():
    # 09:00 in Paris stays 09:00: 08:00 UTC in winter, 07:00 UTC in summer.
    anchor = datetime(2025, 3, 15, 9, tzinfo=PARIS)
    start, end = period_bounds(anchor, "month", datetime(2025, 4, 1, tzinfo=PARIS))
    assert start.astimezone(UTC) == utc(2025, 3, 15, 8)
    assert end.astimezone(UTC) == utc(2025, 4, 15, 7)


@pytest.mark.parametrize(
    ("anchor", "interval", "at", "error"),
    [
        (datetime(2025, 1, 1), "month", utc(2025, 1, 2), ValueError),
        (utc(2025, 1, 1), "month", datetime(2025, 1, 2), ValueError),
        (utc(2025, 1, 1), "week", utc(2025, 1, 2), ValueError),
        ("2025-01-01", "month", utc(2025, 1, 2), TypeError),
    ],
)
def test_period_bounds_reject_bad_input(anchor, interval, at, error):
    with pytest.raises(error):
        period_bounds(anchor, interval, at)


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (utc(2025, 1, 31), 1, utc(2025, 2, 28)),
        (utc(2025, 1, 31), 13, utc(2026, 2, 28)),
        (utc(2023, 3, 31), 11, utc(2024, 2, 29)),
        (utc(2025, 3, 31), -1, utc(2025, 2, 28)),
        (utc(2025, 1, 15), -1, utc(2024, 12, 15)),
        (utc(2025, 12, 31), 2, utc(2026, 2, 28)),
        (utc(2024, 2, 29), 12, utc(2025, 2, 28)),
        (utc(2024, 2, 29), 48, utc(2028, 2, 29)),
    ],
)
def test_add_months_clamps_to_month_end(anchor, months, expected):
    assert add_months(anchor, months) == expected


aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2090, 12, 31),
    timezones=st.sampled_from([UTC, PARIS, NEW_YORK]),
)


@given(aware_datetimes, st.sampled_from(list(Interval)), aware_datetimes)
def test_periods_contain_at_and_tile_without_gaps(anchor, interval, at):
    start, end = period_bounds(anchor, interval, at)
    # Compare instants: aware datetimes sharing a tzinfo compare by wall clock.
    start, end, at = (d.astimezone(UTC) for d in (start, end, at))
    assert start <= at < end
    # The next period starts exactly where this one ends.
    assert period_bounds(anchor, interval, end)[0].astimezone(UTC) == end
    # Length: 28-31 days (monthly) or 365-366 days (yearly), give or take a DST hour.
    days = (end - start).total_seconds() / DAY
    low, high = (27.9, 31.1) if interval is Interval.MONTH else (364.9, 366.1)
    assert low <= days <= high


# --------------------------------------------------------------------------------------------------
# Proration: worked examples
# --------------------------------------------------------------------------------------------------

STARTER, PRO = D("49.00"), D("149.00")
STARTER_YEAR, PRO_YEAR = D("490.00"), D("1490.00")


# fmt: off
@pytest.mark.parametrize(
    (
        "old", "new", "start", "end", "at", "currency",
        "credit", "charge", "net", "remaining", "period",
    ),
    [
        pytest.param(
            # April: 30 days = 2,592,000 s. Change after exactly 10 days: 20 days = 1,728,000 s
            # left, 2/3 of the period. Credit -49 * 2/3 = -32.666.. -> -32.67; charge 149 * 2/3 = 99.333..
            # -> 99.33; net 66.66 (one cent less than (149 - 49) * 2/3 = 66.67: each line rounds).
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 11), "EUR",
            "-32.67", "99.33", "66.66", 1_728_000, 2_592_000, id="30-day-month-after-10-days",
        ),
        pytest.param(
            # January: 31 days = 2,678,400 s. At Jan 16 12:00, 15.5 days = 1,339,200 s are left:
            # exactly half. -49 / 2 = -24.50; 149 / 2 = 74.50; net 50.00.
            STARTER, PRO, utc(2025, 1, 1), utc(2025, 2, 1), utc(2025, 1, 16, 12), "USD",
            "-24.50", "74.50", "50.00", 1_339_200, 2_678_400, id="31-day-month-half",
        ),
        pytest.param(
            # Downgrade, same numbers: credit -99.33, charge 32.67, net -66.66.
            PRO, STARTER, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 11), "EUR",
            "-99.33", "32.67", "-66.66", 1_728_000, 2_592_000, id="downgrade",
        ),
        pytest.param(
            # Half-cent, half-up (banker's rounding would go to the even cent):
            # -49.97 / 2 = -24.985 -> -24.99; 149.97 / 2 = 74.985 -> 74.99; net 50.00.
            D("49.97"), D("149.97"), utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 16), "EUR",
            "-24.99", "74.99", "50.00", 1_296_000, 2_592_000, id="half-cent-rounds-up",
        ),
        pytest.param(
            # Feb 2025 (28 days = 2,419,200 s), change Feb 8: 21 days left = 3/4.
            # -49 * 3/4 = -36.75; 149 * 3/4 = 111.75; net 75.00.
            STARTER, PRO, utc(2025, 2, 1), utc(2025, 3, 1), utc(2025, 2, 8), "EUR",
            "-36.75", "111.75", "75.00", 1_814_400, 2_419_200, id="february-common-year",
        ),
        pytest.param(
            # Feb 2024 has 29 days = 2,505,600 s; from Feb 15, 15 days = 1,296,000 s are left.
            # -49 * 15/29 = -735/29 = -25.3448.. -> -25.34; 149 * 15/29 = 2235/29 = 77.0689..
            # -> 77.07; net 51.73.
            STARTER, PRO, utc(2024, 2, 1), utc(2024, 3, 1), utc(2024, 2, 15), "EUR",
            "-25.34", "77.07", "51.73", 1_296_000, 2_505_600, id="february-leap-year",
        ),
        pytest.param(
            # Leap year 2024: 366 days = 31,622,400 s. From Jul 2: 30+31+30+31+30+31 = 183 days
            # = 15,811,200 s left: exactly half. -490 / 2 = -245.00; 1490 / 2 = 745.00.
            STARTER_YEAR, PRO_YEAR, utc(2024, 1, 1), utc(2025, 1, 1), utc(2024, 7, 2), "EUR",
            "-245.00", "745.00", "500.00", 15_811_200, 31_622_400, id="yearly-leap-year",
        ),
        pytest.param(
            # JPY, no minor unit: -4900 * 2/3 = -3266.67 -> -3267; 14900 * 2/3 = 9933.33 -> 9933.
            D("4900"), D("14900"), utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 11), "JPY",
            "-3267", "9933", "6666", 1_728_000, 2_592_000, id="jpy",
        ),
        pytest.param(
            # JPY half-yen: -4901 / 2 = -2450.5 -> -2451; 9999 / 2 = 4999.5 -> 5000.
            D("4901"), D("9999"), utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 16), "JPY",
            "-2451", "5000", "2549", 1_296_000, 2_592_000, id="jpy-half-yen",
        ),
        pytest.param(
            # One second into the period: 2,591,999 / 2,592,000 left. -49 * that = -48.99998..
            # -> -49.00; 149 * that = 148.99994.. -> 149.00.
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 1, 0, 0, 1), "EUR",
            "-49.00", "149.00", "100.00", 2_591_999, 2_592_000, id="one-second-in",
        ),
        pytest.param(
            # Sub-second part is truncated (Unix seconds, like Stripe): 0.999999 s in is "at start".
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1),
            utc(2025, 4, 1) + timedelta(microseconds=999_999), "EUR",
            "-49.00", "149.00", "100.00", 2_592_000, 2_592_000, id="microseconds-truncated",
        ),
        pytest.param(
            # Last second: 1/2,592,000 left; 149 / 2,592,000 = 0.0000575 -> 0.00.
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 30, 23, 59, 59), "EUR",
            "0.00", "0.00", "0.00", 1, 2_592_000, id="last-second",
        ),
        pytest.param(
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 5, 1), "EUR",
            "0.00", "0.00", "0.00", 0, 2_592_000, id="at-period-end-nothing-left",
        ),
        pytest.param(
            STARTER, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 1), "EUR",
            "-49.00", "149.00", "100.00", 2_592_000, 2_592_000, id="at-period-start-full-swap",
        ),
        pytest.param(
            # March in Paris loses an hour (DST on Mar 30): 31 * 86,400 - 3,600 = 2,674,800 s.
            # From Mar 16 12:00 CET (11:00 UTC) to Apr 1 00:00 CEST (Mar 31 22:00 UTC):
            # 15 days 11 h = 1,335,600 s. -49 * 1,335,600/2,674,800 = -24.467.. -> -24.47;
            # 149 * that = 74.3997.. -> 74.40; net 49.93.
            STARTER, PRO, datetime(2025, 3, 1, tzinfo=PARIS), datetime(2025, 4, 1, tzinfo=PARIS),
            datetime(2025, 3, 16, 12, tzinfo=PARIS), "EUR",
            "-24.47", "74.40", "49.93", 1_335_600, 2_674_800, id="dst-month-is-shorter",
        ),
        pytest.param(
            # Free -> Starter: nothing to credit. 49 * 2/3 = 32.666.. -> 32.67.
            D("0.00"), STARTER, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 11), "EUR",
            "0.00", "32.67", "32.67", 1_728_000, 2_592_000, id="from-free-plan",
        ),
        pytest.param(
            # Same plan: credit and charge cancel exactly because both round the same magnitude.
            PRO, PRO, utc(2025, 4, 1), utc(2025, 5, 1), utc(2025, 4, 11), "EUR",
            "-99.33", "99.33", "0.00", 1_728_000, 2_592_000, id="same-price-nets-to-zero",
        ),
    ],
)
def test_prorate(old, new, start, end, at, currency, credit, charge, net, remaining, period):
    result = prorate(
        old_amount=old,
        new_amount=new,
        period_start=start,
        period_end=end,
        at=at,
        currency=currency,
    )
    assert (str(result.credit), str(result.charge), str(result.net)) == (credit, charge, net)
    assert (result.remaining_seconds, result.period_seconds) == (remaining, period)
    assert (result.new_period_start, result.new_period_end) == (start, end)
# fmt: on


def test_prorate_mixes_time_zones_by_instant():
    # Same instants as the 30-day example, written in New York time for the change moment.
    result = prorate(
        old_amount=STARTER,
        new_amount=PRO,
        period_start=utc(2025, 4, 1),
        period_end=utc(2025, 5, 1),
        at=utc(2025, 4, 11).astimezone(NEW_YORK),
        currency="EUR",
    )
    assert (result.credit, result.charge, result.net) == (D("-32.67"), D("99.33"), D("66.66"))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"at": utc(2025, 3, 31, 23, 59, 59)}, ProrationError),  # before the period
        ({"at": utc(2025, 5, 1, 0, 0, 1)}, ProrationError),  # after the period
        ({"period_end": utc(2025, 4, 1)}, ProrationError),  # empty period
        ({"period_end": utc(2025, 3, 1), "at": utc(2025, 3, 15)}, ProrationError),  # reversed
        ({"old_amount": 49.0}, TypeError),
        ({"new_amount": 149.0}, TypeError),
        ({"old_amount": D("-1")}, ValueError),
        ({"at": datetime(2025, 4, 11)}, ValueError),  # naive
        ({"period_start": datetime(2025, 4, 1)}, ValueError),  # naive
        ({"currency": "EUX"}, UnknownCurrency),
    ],
)
def test_prorate_rejects_bad_input(kwargs, error):
    arguments = {
        "old_amount": STARTER,
        "new_amount": PRO,
        "period_start": utc(2025, 4, 1),
        "period_end": utc(2025, 5, 1),
        "at": utc(2025, 4, 11),
        "currency": "EUR",
        **kwargs,
    }
    with pytest.raises(error):
        prorate(**arguments)


def test_proration_error_is_a_value_error():
    assert issubclass(ProrationError, ValueError)


# --------------------------------------------------------------------------------------------------
# Proration: plan changes from a billing anchor, including interval switches
# --------------------------------------------------------------------------------------------------


# fmt: off
@pytest.mark.parametrize(
    (
        "old", "old_interval", "new", "new_interval", "anchor", "at",
        "credit", "charge", "net", "new_start", "new_end",
    ),
    [
        pytest.param(
            # Monthly -> monthly, anchor Jan 1: April period, 10 of 30 days used (see above).
            STARTER, "month", PRO, "month", utc(2025, 1, 1), utc(2025, 4, 11),
            "-32.67", "99.33", "66.66", utc(2025, 4, 1), utc(2025, 5, 1),
            id="same-interval-keeps-period",
        ),
        pytest.param(
            # Anchor Jan 31: the period is Feb 28 -> Mar 31 (31 days = 2,678,400 s). At Mar 15
            # 12:00, 15.5 days are left (Mar 15 12:00 -> Mar 31 00:00): half.
            # -24.50 + 74.50 = 50.00.
            STARTER, "month", PRO, "month", utc(2025, 1, 31), utc(2025, 3, 15, 12),
            "-24.50", "74.50", "50.00", utc(2025, 2, 28), utc(2025, 3, 31),
            id="clamped-anchor-period",
        ),
        pytest.param(
            # Monthly -> yearly (Stripe rule): credit the unused 20/30 of April (-32.67), charge a
            # full Pro year (1490.00) starting now; net 1457.33; anchor restarts at Apr 11.
            STARTER, "month", PRO_YEAR, "year", utc(2025, 1, 1), utc(2025, 4, 11),
            "-32.67", "1490.00", "1457.33", utc(2025, 4, 11), utc(2026, 4, 11),
            id="monthly-to-yearly",
        ),
        pytest.param(
            # Yearly -> monthly: 2025 has 365 days; from Jul 2, 183 days are left.
            # -1490 * 183/365 = -272,670/365 = -747.041.. -> -747.04; charge a full month 49.00;
            # net -698.04 (a credit balance for the firm).
            PRO_YEAR, "year", STARTER, "month", utc(2025, 1, 1), utc(2025, 7, 2),
            "-747.04", "49.00", "-698.04", utc(2025, 7, 2), utc(2025, 8, 2),
            id="yearly-to-monthly-credit-balance",
        ),
        pytest.param(
            # Monthly -> yearly on Feb 29: the new yearly anchor clamps to Feb 28 next year.
            # Period Feb 1 -> Mar 1 2024 (29 days); from Feb 29 one day is left: 1/29.
            # -49/29 = -1.6896.. -> -1.69.
            STARTER, "month", PRO_YEAR, "year", utc(2024, 1, 1), utc(2024, 2, 29),
            "-1.69", "1490.00", "1488.31", utc(2024, 2, 29), utc(2025, 2, 28),
            id="switch-on-leap-day",
        ),
        pytest.param(
            # Interval switch: the new period starts at the change moment, truncated to the second.
            STARTER, "month", PRO_YEAR, "year", utc(2025, 4, 1),
            utc(2025, 4, 1) + timedelta(microseconds=500),
            "-49.00", "1490.00", "1441.00", utc(2025, 4, 1), utc(2026, 4, 1),
            id="switch-at-period-start",
        ),
    ],
)
def test_prorate_plan_change(
    old, old_interval, new, new_interval, anchor, at, credit, charge, net, new_start, new_end
):
    result = prorate_plan_change(
        old_amount=old,
        old_interval=old_interval,
        new_amount=new,
        new_interval=new_interval,
        anchor=anchor,
        at=at,
        currency="EUR",
    )
    assert (str(result.credit), str(result.charge), str(result.net)) == (credit, charge, net)
    assert (result.new_period_start, result.new_period_end) == (new_start, new_end)
# fmt: on


def test_interval_switch_reports_the_old_period_seconds():
    result = prorate_plan_change(
        old_amount=STARTER,
        old_interval=Interval.MONTH,
        new_amount=PRO_YEAR,
        new_interval=Interval.YEAR,
        anchor=utc(2025, 1, 1),
        at=utc(2025, 4, 11),
        currency="EUR",
    )
    assert (result.remaining_seconds, result.period_seconds) == (1_728_000, 2_592_000)


def test_plan_change_rejects_unknown_interval():
    with pytest.raises(ValueError, match="interval"):
        prorate_plan_change(
            old_amount=STARTER,
            old_interval="month",
            new_amount=PRO,
            new_interval="quarter",
            anchor=utc(2025, 1, 1),
            at=utc(2025, 4, 11),
            currency="EUR",
        )


# --------------------------------------------------------------------------------------------------
# Proration: properties
# --------------------------------------------------------------------------------------------------

EXPONENT_OF = {"EUR": 2, "JPY": 0, "KWD": 3}


@st.composite
def plan_changes(draw):
    currency = draw(st.sampled_from(list(EXPONENT_OF)))
    minor = st.integers(min_value=0, max_value=10**8).map(lambda units: D(units).scaleb(-EXPONENT_OF[currency]))
    anchor = draw(aware_datetimes)
    interval = draw(st.sampled_from(list(Interval)))
    at = draw(aware_datetimes)
    start, end = period_bounds(anchor, interval, at)
    return draw(minor), draw(minor), start, end, at, currency


@settings(max_examples=300)
@given(plan_changes())
def test_proration_stays_within_the_plan_amounts(change):
    old, new, start, end, at, currency = change
    result = prorate(old_amount=old, new_amount=new, period_start=start, period_end=end, at=at, currency=currency)
    # Never credit more than the old plan cost, never charge more than the new one costs ...
    assert -old <= result.credit <= 0
    assert 0 <= result.charge <= new
    # ... so the net lies between zero and the full price difference, whatever the rounding.
    assert min(D(0), new - old) <= result.net <= max(D(0), new - old)
    assert result.net == result.credit + result.charge
    assert 0 <= result.remaining_seconds <= result.period_seconds
    for figure in (result.credit, result.charge, result.net):
        assert figure.as_tuple().exponent == -EXPONENT_OF[currency]


@given(plan_changes())
def test_proration_at_period_start_is_full_new_minus_full_old(change):
    old, new, start, end, _, currency = change
    result = prorate(
        old_amount=old,
        new_amount=new,
        period_start=start,
        period_end=end,
        at=start,
        currency=currency,
    )
    assert (result.credit, result.charge, result.net) == (-old, new, new - old)


@given(plan_changes())
def test_proration_at_period_end_is_zero(change):
    old, new, start, end, _, currency = change
    result = prorate(old_amount=old, new_amount=new, period_start=start, period_end=end, at=end, currency=currency)
    assert result.credit == result.charge == result.net == 0


@given(plan_changes(), st.integers(min_value=1, max_value=40 * DAY))
def test_a_later_change_never_credits_or_charges_more(change, delay):
    old, new, start, end, at, currency = change
    later = min(at.astimezone(UTC) + timedelta(seconds=delay), end.astimezone(UTC))
    common = {
        "old_amount": old,
        "new_amount": new,
        "period_start": start,
        "period_end": end,
        "currency": currency,
    }
    first, second = prorate(at=at, **common), prorate(at=later, **common)
    assert first.credit <= second.credit <= 0
    assert first.charge >= second.charge >= 0


# --------------------------------------------------------------------------------------------------
# Webhook signatures
# --------------------------------------------------------------------------------------------------

SECRET = "whsec_test_secret"
OLD_SECRET = "whsec_old_secret"
PAYLOAD = b'{"id":"evt_1","type":"invoice.paid"}'
T = 1_700_000_000
# Computed independently of this code:
#   printf '1700000000.{"id":"evt_1","type":"invoice.paid"}' \
#     | openssl dgst -sha256 -hmac whsec_test_secret
KNOWN_V1 = "46dc069361a7691082640523fa33fe5d6c8c88d5f5e257cdf8cf11539d166595"


def test_sign_payload_matches_an_independent_hmac():
    assert sign_payload(PAYLOAD, SECRET, T) == f"t={T},v1={KNOWN_V1}"


def test_sign_payload_format():
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", sign_payload(b"", SECRET, 0))


def test_valid_signature_returns_its_timestamp():
    assert verify_signature(PAYLOAD, f"t={T},v1={KNOWN_V1}", SECRET, now=T) == T


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (T, True),
        (T + 300, True),  # exactly the tolerance, in the past: accepted
        (T + 301, False),  # one second too old
        (T - 300, True),  # exactly the tolerance, in the future (sender's clock ahead): accepted
        (T - 301, False),  # one second too far in the future
        (T + 86_400, False),  # a replay a day later
    ],
)
def test_signature_tolerance_applies_in_both_directions(now, accepted):
    header = sign_payload(PAYLOAD, SECRET, T)
    if accepted:
        assert verify_signature(PAYLOAD, header, SECRET, now=now) == T
    else:
        with pytest.raises(StaleSignature):
            verify_signature(PAYLOAD, header, SECRET, now=now)


def test_custom_tolerance():
    header = sign_payload(PAYLOAD, SECRET, T)
    assert verify_signature(PAYLOAD, header, SECRET, tolerance=10, now=T + 10) == T
    with pytest.raises(StaleSignature):
        verify_signature(PAYLOAD, header, SECRET, tolerance=10, now=T + 11)


@pytest.mark.parametrize("tolerance", [0, -1, True, 1.5])
def test_tolerance_must_be_a_positive_int(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        verify_signature(PAYLOAD, sign_payload(PAYLOAD, SECRET, T), SECRET, tolerance, now=T)


def test_default_now_is_the_clock():
    header = sign_payload(PAYLOAD, SECRET, T)
    with time_machine.travel(datetime.fromtimestamp(T + 299, UTC), tick=False):
        assert verify_signature(PAYLOAD, header, SECRET) == T
    with (
        time_machine.travel(datetime.fromtimestamp(T + 301, UTC), tick=False),
        pytest.raises(StaleSignature),
    ):
        verify_signature(PAYLOAD, header, SECRET)


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        pytest.param(PAYLOAD, sign_payload(PAYLOAD, "whsec_attacker", T), id="wrong-secret"),
        pytest.param(b'{"id":"evt_1","type":"invoice.voided"}', f"t={T},v1={KNOWN_V1}", id="tampered-body"),
        pytest.param(PAYLOAD + b"\n", f"t={T},v1={KNOWN_V1}", id="trailing-newline"),
        pytest.param(PAYLOAD, f"t={T + 1},v1={KNOWN_V1}", id="timestamp-moved"),
        pytest.param(PAYLOAD, f"t={T},v1={'0' * 64}", id="zero-digest"),
        pytest.param(PAYLOAD, f"t={T},v0={KNOWN_V1},v1={'a' * 64}", id="valid-digest-as-v0"),
    ],
)
def test_forged_signature_is_rejected(payload, header):
    with pytest.raises(BadSignature):
        verify_signature(payload, header, SECRET, now=T)


def test_forged_and_stale_is_reported_as_forged():
    # The signature is checked first: an attacker learns nothing about the tolerance window.
    with pytest.raises(BadSignature):
        verify_signature(PAYLOAD, f"t={T - 10_000},v1={'a' * 64}", SECRET, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "garbage",
        f"v1={KNOWN_V1}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},v0={KNOWN_V1}",  # no v1 signature
        f"t=abc,v1={KNOWN_V1}",
        f"t=-{T},v1={KNOWN_V1}",
        f"t={T}.5,v1={KNOWN_V1}",
        f"t=,v1={KNOWN_V1}",
        f"t=\uff11\uff17\uff10\uff10,v1={KNOWN_V1}",  # full-width digits, which int() accepts
        f"t=1{'0' * 20},v1={KNOWN_V1}",  # absurd timestamp
        f"t={T},t={T},v1={KNOWN_V1}",  # two timestamps
        f"t={T},v1=zz",
        f"t={T},v1={KNOWN_V1[:-1]}",  # 63 hex digits
        f"t={T},v1={KNOWN_V1}0",  # 65 hex digits
        f"t={T},v1=",
        f"t={T},,v1={KNOWN_V1}",  # empty entry
        f"t={T};v1={KNOWN_V1}",
        f"{T},{KNOWN_V1}",
        f"=1,t={T},v1={KNOWN_V1}",
    ],
)
def test_malformed_header_is_rejected(header):
    with pytest.raises(MalformedSignature):
        verify_signature(PAYLOAD, header, SECRET, now=T)


def test_none_header_is_malformed():
    with pytest.raises(MalformedSignature):
        verify_signature(PAYLOAD, None, SECRET, now=T)


def test_header_with_several_v1_entries_matches_any_during_rotation():
    # The sender signs with both its old and its new secret while rolling.
    old = sign_payload(PAYLOAD, OLD_SECRET, T).split(",")[1]
    new = sign_payload(PAYLOAD, SECRET, T).split(",")[1]
    for header in (f"t={T},{old},{new}", f"t={T},{new},{old}", f"{new},t={T},{old}"):
        assert verify_signature(PAYLOAD, header, SECRET, now=T) == T
        assert verify_signature(PAYLOAD, header, OLD_SECRET, now=T) == T
        with pytest.raises(BadSignature):
            verify_signature(PAYLOAD, header, "whsec_third", now=T)


def test_receiver_may_hold_several_secrets_during_rotation():
    header = sign_payload(PAYLOAD, OLD_SECRET, T)
    assert verify_signature(PAYLOAD, header, [SECRET, OLD_SECRET], now=T) == T
    assert verify_signature(PAYLOAD, header, (OLD_SECRET,), now=T) == T
    with pytest.raises(BadSignature):
        verify_signature(PAYLOAD, header, [SECRET], now=T)


@pytest.mark.parametrize("secret", ["", [], [""], [SECRET, None]])
def test_empty_secrets_are_refused(secret):
    with pytest.raises(ValueError, match="secret"):
        verify_signature(PAYLOAD, sign_payload(PAYLOAD, SECRET, T), secret, now=T)


def test_header_tolerates_spaces_unknown_schemes_and_upper_case_hex():
    assert verify_signature(PAYLOAD, f" t={T} , v0=abc , v1={KNOWN_V1} ", SECRET, now=T) == T
    assert verify_signature(PAYLOAD, f"t={T},v1={KNOWN_V1.upper()}", SECRET, now=T) == T


def test_payload_must_be_raw_bytes():
    header = sign_payload(PAYLOAD, SECRET, T)
    assert verify_signature(bytearray(PAYLOAD), header, SECRET, now=T) == T
    with pytest.raises(TypeError):
        verify_signature(PAYLOAD.decode(), header, SECRET, now=T)
    with pytest.raises(TypeError):
        sign_payload(PAYLOAD.decode(), SECRET, T)


def test_non_ascii_payload_and_secret():
    payload = '{"name":"Müller & Söhne","amount":"€49"}'.encode()
    header = sign_payload(payload, "whsec_clé", T)
    assert verify_signature(payload, header, "whsec_clé", now=T) == T


@pytest.mark.parametrize(("secret", "timestamp"), [("", T), (SECRET, -1), (SECRET, "1700000000")])
def test_sign_payload_rejects_bad_arguments(secret, timestamp):
    with pytest.raises(ValueError, match=r"secret|timestamp"):
        sign_payload(PAYLOAD, secret, timestamp)


def test_signature_errors_share_one_base():
    for error in (MalformedSignature, StaleSignature, BadSignature):
        assert issubclass(error, SignatureError)


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=10**10))
def test_any_signed_payload_verifies_and_any_flipped_bit_does_not(payload, timestamp):
    header = sign_payload(payload, SECRET, timestamp)
    assert verify_signature(payload, header, SECRET, now=timestamp) == timestamp
    tampered = payload + b"x" if not payload else bytes([payload[0] ^ 1]) + payload[1:]
    with pytest.raises(BadSignature):
        verify_signature(tampered, header, SECRET, now=timestamp)


# --------------------------------------------------------------------------------------------------
# Dunning schedule
# --------------------------------------------------------------------------------------------------

DUE = utc(2025, 3, 1)  # reminders on Mar 2, Mar 4, Mar 8; suspension on Mar 15 (14 days)
POLICY = DunningPolicy(reminder_offsets_days=(1, 3, 7), grace_period_days=14)


# fmt: off
@pytest.mark.parametrize(
    ("now", "sent", "status", "to_send", "superseded", "days_overdue", "next_check"),
    [
        pytest.param(
            utc(2025, 2, 28, 12), set(), "current", (), (), 0, utc(2025, 3, 1), id="before-due"
        ),
        pytest.param(
            utc(2025, 3, 1), set(), "past_due", (), (), 0, utc(2025, 3, 2), id="at-due-moment"
        ),
        pytest.param(
            utc(2025, 3, 1, 23, 59, 59), set(), "past_due", (), (), 0, utc(2025, 3, 2),
            id="first-day-no-reminder-yet",
        ),
        pytest.param(
            utc(2025, 3, 2), set(), "past_due", (1,), (), 1, utc(2025, 3, 4), id="first-reminder"
        ),
        pytest.param(
            utc(2025, 3, 2, 6), {1}, "past_due", (), (), 1, utc(2025, 3, 4),
            id="first-reminder-already-sent",
        ),
        pytest.param(
            utc(2025, 3, 5), {1}, "past_due", (3,), (), 4, utc(2025, 3, 8), id="second-reminder"
        ),
        pytest.param(
            # The job was down for a week: only the latest reminder goes out.
            utc(2025, 3, 9), set(), "past_due", (7,), (1, 3), 8, utc(2025, 3, 15),
            id="catch-up-sends-only-latest",
        ),
        pytest.param(
            utc(2025, 3, 14, 23, 59, 59), {1, 3, 7}, "past_due", (), (), 13, utc(2025, 3, 15),
            id="last-second-before-suspension",
        ),
        pytest.param(
            utc(2025, 3, 15), {1, 3, 7}, "suspended", (), (), 14, None, id="suspended-at-grace-end"
        ),
        pytest.param(
            # Suspended: the suspension notice replaces every reminder still unsent.
            utc(2025, 3, 20), {1}, "suspended", (), (3, 7), 19, None,
            id="suspension-supersedes-reminders",
        ),
        pytest.param(
            # Offsets sent under an older policy are ignored.
            utc(2025, 3, 2), {2, 5}, "past_due", (1,), (), 1, utc(2025, 3, 4),
            id="unknown-sent-offsets-ignored",
        ),
    ],
)
def test_dunning_timeline(now, sent, status, to_send, superseded, days_overdue, next_check):
    decision = dunning_decide(due_at=DUE, now=now, sent=sent, policy=POLICY)
    assert decision.status == DunningStatus(status)
    assert decision.reminders_to_send == to_send
    assert decision.reminders_superseded == superseded
    assert decision.days_overdue == days_overdue
    assert decision.next_check_at == next_check
    assert decision.suspend_at == utc(2025, 3, 15)
    assert decision.past_due is (status == "past_due")
    assert decision.suspend is (status == "suspended")
# fmt: on


@pytest.mark.parametrize("step", [timedelta(minutes=30), timedelta(hours=7), timedelta(days=1)])
def test_a_periodic_runner_sends_each_reminder_once_in_order(step):
    sent_at: dict[int, datetime] = {}
    handled: set[int] = set()
    statuses = []
    now = DUE - timedelta(days=2)
    while now < DUE + timedelta(days=20):
        decision = dunning_decide(due_at=DUE, now=now, sent=handled, policy=POLICY)
        for offset in decision.reminders_to_send:
            assert offset not in sent_at
            sent_at[offset] = now
        handled |= set(decision.reminders_to_send) | set(decision.reminders_superseded)
        if not statuses or statuses[-1] != decision.status:
            statuses.append(decision.status)
        now += step
    assert statuses == [DunningStatus.CURRENT, DunningStatus.PAST_DUE, DunningStatus.SUSPENDED]
    assert sorted(sent_at) == [1, 3, 7]
    for offset, moment in sent_at.items():
        # Sent at the first run on or after the reminder's time, not later.
        due = DUE + timedelta(days=offset)
        assert due <= moment < due + step


def test_dunning_counts_days_in_the_due_date_time_zone_across_dst():
    # Due Friday 28 Mar 2025 09:00 in Paris (08:00 UTC). Paris moves to summer time on Sunday 30,
    # so "3 days later" is Monday 31 Mar 09:00 CEST = 07:00 UTC, not 08:00 UTC.
    due = datetime(2025, 3, 28, 9, tzinfo=PARIS)
    policy = DunningPolicy(reminder_offsets_days=(3,), grace_period_days=7)
    before = dunning_decide(due_at=due, now=utc(2025, 3, 31, 6, 59, 59), policy=policy)
    assert before.reminders_to_send == ()
    assert before.days_overdue == 2
    assert before.next_check_at.astimezone(UTC) == utc(2025, 3, 31, 7)
    on_time = dunning_decide(due_at=due, now=utc(2025, 3, 31, 7), policy=policy)
    assert on_time.reminders_to_send == (3,)
    assert on_time.days_overdue == 3
    # Suspension: Friday 4 Apr 09:00 CEST = 07:00 UTC.
    assert on_time.suspend_at.astimezone(UTC) == utc(2025, 4, 4, 7)


def test_dunning_accepts_now_in_another_time_zone():
    now = utc(2025, 3, 2).astimezone(NEW_YORK)  # 1 Mar 19:00 in New York, 2 Mar 00:00 UTC
    decision = dunning_decide(due_at=DUE, now=now, policy=POLICY)
    assert decision.reminders_to_send == (1,)


def test_zero_grace_suspends_at_the_due_moment():
    policy = DunningPolicy(reminder_offsets_days=(), grace_period_days=0)
    assert dunning_decide(due_at=DUE, now=DUE - timedelta(seconds=1), policy=policy).status == (DunningStatus.CURRENT)
    assert dunning_decide(due_at=DUE, now=DUE, policy=policy).status == DunningStatus.SUSPENDED


def test_default_policy_is_1_3_7_with_14_days_of_grace():
    assert DunningPolicy() == POLICY
    decision = dunning_decide(due_at=DUE, now=utc(2025, 3, 4))
    assert decision.reminders_to_send == (3,)
    assert decision.reminders_superseded == (1,)


def test_policy_offsets_are_stored_sorted():
    assert DunningPolicy(reminder_offsets_days=[7, 1, 3]).reminder_offsets_days == (1, 3, 7)
    assert DunningPolicy(reminder_offsets_days=[7, 1, 3]) == POLICY


@pytest.mark.parametrize(
    ("offsets", "grace"),
    [
        ((1, 3, 14), 14),  # a reminder on the suspension day would never be sent
        ((1, 20), 14),
        ((-1, 3), 14),
        ((1, 1), 14),
        ((1, True), 14),
        ((1.5,), 14),
        ((1,), -1),
        ((1,), 0),
        ((), True),
    ],
)
def test_invalid_policies_are_refused(offsets, grace):
    with pytest.raises(ValueError, match=r"offset|grace"):
        DunningPolicy(reminder_offsets_days=offsets, grace_period_days=grace)


@pytest.mark.parametrize(
    ("due_at", "now"),
    [(datetime(2025, 3, 1), utc(2025, 3, 2)), (DUE, datetime(2025, 3, 2))],
)
def test_dunning_requires_aware_datetimes(due_at, now):
    with pytest.raises(ValueError, match="timezone-aware"):
        dunning_decide(due_at=due_at, now=now, policy=POLICY)


@given(
    st.lists(st.integers(min_value=0, max_value=29), unique=True, max_size=6),
    st.integers(min_value=0, max_value=45 * DAY),
    st.sets(st.integers(min_value=0, max_value=29)),
)
def test_dunning_decision_invariants(offsets, elapsed, sent):
    policy = DunningPolicy(reminder_offsets_days=offsets, grace_period_days=30)
    now = DUE + timedelta(seconds=elapsed)
    decision = dunning_decide(due_at=DUE, now=now, sent=sent, policy=policy)
    assert len(decision.reminders_to_send) <= 1
    handled = set(decision.reminders_to_send) | set(decision.reminders_superseded)
    assert not handled & sent
    assert handled <= set(offsets)
    for offset in handled:
        assert DUE + timedelta(days=offset) <= now
    if decision.reminders_to_send and decision.reminders_superseded:
        assert max(decision.reminders_superseded) < decision.reminders_to_send[0]
    assert decision.days_overdue == elapsed // DAY
    assert decision.next_check_at is None or decision.next_check_at > now
    # Recording the decision makes the next call at the same moment a no-op.
    again = dunning_decide(due_at=DUE, now=now, sent=sent | handled, policy=policy)
    assert again.reminders_to_send == again.reminders_superseded == ()
    assert again.status == decision.status
