"""The one formatting layer (codex.formatting): hand-checked figures per locale and date style."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from codex import formatting as fmt
from codex.formatting import MINUS, NBSP, DisplayPreferences, display_preferences

US = DisplayPreferences(locale="en_US")
GB = DisplayPreferences(locale="en_GB")
DE = DisplayPreferences(locale="de_DE")


@pytest.mark.parametrize(
    ("prefs", "value", "currency", "signed", "shown"),
    [
        (US, D("2105512"), "USD", False, "$2,105,512.00"),
        (US, D("-12.5"), "EUR", False, f"{MINUS}€12.50"),
        (US, D("1234.567"), "USD", True, "+$1,234.57"),
        (US, D("0.001"), "USD", True, "$0.00"),  # rounds to zero: no sign, no "−0"
        (US, D("1235"), "JPY", False, "¥1,235"),
        (US, D("10"), "XYZ", False, f"XYZ{NBSP}10.00"),  # Babel writes unknown codes before the number
        (US, D("99.5"), "", False, "99.50"),
        (DE, D("2105512"), "EUR", False, f"2.105.512,00{NBSP}€"),
        (GB, D("-3"), "GBP", False, f"{MINUS}£3.00"),
    ],
)
def test_money_in_its_currency_and_locale(prefs, value, currency, signed, shown):
    with display_preferences(prefs):
        assert fmt.money(value, currency, signed=signed) == shown


def test_money_of_nothing_is_empty():
    assert fmt.money(None, "USD") == "" and fmt.money("", "USD") == "" and fmt.money("abc", "USD") == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (D("0.0648"), f"+6.48{NBSP}%"),
        (D("-0.012"), f"{MINUS}1.20{NBSP}%"),
        (D("0"), f"0.00{NBSP}%"),
        (D("0.10544444"), f"+10.54{NBSP}%"),
        (0.25, f"+25.00{NBSP}%"),
    ],
)
def test_returns_are_signed_percentages_with_a_real_minus(value, shown):
    with display_preferences(US):
        assert fmt.performance(value) == shown


def test_percent_uses_the_locale_decimal_separator():
    with display_preferences(DE):
        assert fmt.performance(D("0.0648")) == f"+6,48{NBSP}%"
        assert fmt.ratio(D("0.123")) == f"12,3{NBSP}%"
    with display_preferences(US):
        assert fmt.percent(D("3.2"), signed=True) == f"+3.20{NBSP}%"


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (D("150.0000"), "USD", "$150.00"),
        (D("0.12345"), "USD", "$0.12345"),
        (D("1234.5"), "EUR", "€1,234.50"),
        (D("4512"), "JPY", "¥4,512"),
        (D("0.0125"), "", "0.0125"),
        (D("12.3456789"), "USD", "$12.345679"),  # at most six decimals
    ],
)
def test_prices_keep_the_instruments_precision(value, currency, shown):
    with display_preferences(US):
        assert fmt.price(value, currency) == shown


def test_quantities_show_their_own_digits():
    with display_preferences(US):
        assert fmt.quantity(D("1250.000000")) == "1,250"
        assert fmt.quantity(D("0.5")) == "0.5"
        assert fmt.quantity(D("-3")) == f"{MINUS}3"
        assert fmt.count(1_000_000) == "1,000,000"


DAY = dt.date(2026, 12, 7)
MOMENT = dt.datetime(2026, 12, 7, 14, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("prefs", "day", "moment"),
    [
        (DisplayPreferences(locale="en_US"), "Dec 7, 2026", "Dec 7, 2026, 2:05\u202fPM"),
        (DisplayPreferences(locale="en_GB"), "7 Dec 2026", "7 Dec 2026, 14:05"),
        (DisplayPreferences(locale="en_US", date_format="iso"), "2026-12-07", "2026-12-07 14:05"),
        (DisplayPreferences(locale="en_US", date_format="long"), "December 7, 2026", "December 7, 2026, 2:05\u202fPM"),
        (DisplayPreferences(locale="de_DE"), "07.12.2026", "07.12.2026, 14:05"),
    ],
)
def test_dates_follow_the_persons_preference(prefs, day, moment):
    with display_preferences(prefs):
        assert fmt.date(DAY) == day
        assert fmt.date(MOMENT) == day
        assert fmt.datetime(MOMENT) == moment


def test_preferences_of_a_user_and_of_nobody():
    class Person:
        is_authenticated = True
        locale = "de_DE"
        date_format = "bogus"

    prefs = fmt.preferences_of(Person())
    assert prefs == DisplayPreferences(locale="de_DE", date_format="")
    assert fmt.preferences_of(None) == DisplayPreferences()


def test_latin1_maps_the_typography_for_pdf_fonts():
    assert fmt.latin1(f"{MINUS}€1,234.50 and +6.48{NBSP}%") == f"-EUR 1,234.50 and +6.48{NBSP}%"
    assert fmt.latin1("日本") == "??"
