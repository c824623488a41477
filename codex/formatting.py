"""How Codex shows numbers, money, returns and dates to people: the one formatting layer.

Every template (through the ``codex_ui`` filters), the PDF outputs (fee statements, portal
reports) and the operator console call these functions, so a figure looks the same everywhere.
Babel (CLDR data) does the locale work: grouping and decimal separators, currency symbols and
their placement, date patterns (docs/decisions/1050-one-formatting-layer.md).

Rules:
- **Money**: the currency's own minor unit ("$2,105,512.00", "¥1,235", "2.105.512,00 €" in
  German), with a real minus sign (U+2212) when negative and "+" only when asked (changes).
- **Returns and percentages**: "+6.48 %", "−1.20 %", "0.00 %": a sign always on returns, a
  no-break space before "%", the locale's decimal separator.
- **Quantities**: as many decimals as the quantity has (up to 6), none added.
- **Prices**: at least the currency's minor unit, more when the price has them (up to 6):
  "150.00", "0.12345". An instrument's precision is that of its prices and currency.
- **Dates** follow the person's preference (``User.date_format``), else their locale's.

The preferences of the person being served live in a context variable that
``DisplayPreferencesMiddleware`` sets per request (read lazily: a page that formats nothing
never loads them); code outside a request (PDFs, e-mails) uses ``display_preferences(...)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_date
from babel.dates import format_time as _babel_time
from babel.numbers import (
    NumberPattern,
    UnknownCurrencyError,
    format_currency,
    format_decimal,
    get_currency_precision,
    parse_pattern,
)
from django.conf import settings
from django.utils import timezone

MINUS = "\u2212"
NBSP = "\u00a0"
MAX_DECIMALS = 6

#: The locales a person may choose (CLDR codes); "" follows the site's ``LANGUAGE_CODE``.
LOCALE_CHOICES = [
    ("", "Site default"),
    ("en_US", "English (United States)"),
    ("en_GB", "English (United Kingdom)"),
    ("de_DE", "Deutsch (Deutschland)"),
    ("de_CH", "Deutsch (Schweiz)"),
    ("fr_FR", "Français (France)"),
]

#: Date styles a person may choose; "" follows their locale ("Dec 7, 2026" / "7 Dec 2026").
DATE_FORMAT_CHOICES = [
    ("", "As my language writes it (e.g. Dec 7, 2026)"),
    ("iso", "ISO 8601 (2026-12-07)"),
    ("short", "Numeric, as my language writes it (e.g. 12/7/26)"),
    ("long", "Long (e.g. December 7, 2026)"),
]
DATE_FORMATS = frozenset(code for code, _ in DATE_FORMAT_CHOICES)


@dataclass(frozen=True)
class DisplayPreferences:
    locale: str = ""
    date_format: str = ""

    @property
    def babel_locale(self) -> Locale:
        return _locale(self.locale or settings.LANGUAGE_CODE)


_LOCALES: dict[str, Locale] = {}


def _locale(code: str) -> Locale:
    found = _LOCALES.get(code)
    if found is None:
        try:
            found = Locale.parse(code.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            found = Locale.parse("en_US")
        _LOCALES[code] = found
    return found


def preferences_of(user) -> DisplayPreferences:
    """A signed-in person's preferences; the site's defaults for anyone else."""
    if user is None or not getattr(user, "is_authenticated", False):
        return DisplayPreferences()
    date_format = getattr(user, "date_format", "") or ""
    return DisplayPreferences(
        locale=getattr(user, "locale", "") or "",
        date_format=date_format if date_format in DATE_FORMATS else "",
    )


# The request being served (preferences resolved from its user on first use), or fixed preferences.
_current: ContextVar[object | None] = ContextVar("codex_display_preferences", default=None)


def current_preferences() -> DisplayPreferences:
    value = _current.get()
    if value is None:
        return DisplayPreferences()
    if isinstance(value, DisplayPreferences):
        return value
    prefs = preferences_of(getattr(value, "user", None))
    _current.set(prefs)
    return prefs


@contextmanager
def display_preferences(prefs: DisplayPreferences | None = None, *, user=None) -> Iterator[DisplayPreferences]:
    """Format with ``prefs`` (or ``user``'s) inside the block: PDFs, e-mails, background jobs."""
    chosen = prefs if prefs is not None else preferences_of(user)
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


class DisplayPreferencesMiddleware:
    """Makes the signed-in person's locale and date style the ones every filter uses."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


# --- numbers ----------------------------------------------------------------------------------------


def to_decimal(value) -> Decimal | None:
    """``value`` as a Decimal (floats through their shortest repr), or None if it is not a number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def _sign(d: Decimal, text: str, *, signed: bool) -> str:
    if d < 0:
        return f"{MINUS}{text}"
    if signed and d > 0:
        return f"+{text}"
    return text


@lru_cache(maxsize=64)
def _pattern(min_places: int, max_places: int) -> NumberPattern:
    """The parsed number pattern (parsed once: Babel would parse the string on every call)."""
    if max_places <= 0:
        return parse_pattern("#,##0")
    return parse_pattern("#,##0." + "0" * min_places + "#" * (max_places - min_places))


def number(value, *, places: int | None = None, max_places: int = MAX_DECIMALS, signed: bool = False) -> str:
    """A plain number with the locale's separators: fixed ``places``, else as many as it has."""
    d = to_decimal(value)
    if d is None:
        return ""
    lo, hi = (places, places) if places is not None else (0, max_places)
    magnitude = abs(d).quantize(Decimal(1).scaleb(-hi)) if hi < 28 else abs(d)
    if magnitude == 0:
        d = Decimal(0)
    text = format_decimal(magnitude, format=_pattern(lo, hi), locale=current_preferences().babel_locale)
    return _sign(d, text, signed=signed)


def count(value) -> str:
    """A whole count: "1,000,000" ("1.000.000" in German)."""
    d = to_decimal(value)
    return "" if d is None else number(d, places=0)


def quantity(value) -> str:
    """Units held or traded: the digits the quantity has (up to 6), never padded: "1,250", "0.5"."""
    return number(value)


@lru_cache(maxsize=256)
def currency_digits(currency: str) -> int:
    """The currency's minor unit (CLDR): fixed data, looked up once per code, not per amount."""
    try:
        return get_currency_precision((currency or "").upper()) if currency else 2
    except (UnknownCurrencyError, KeyError):
        return 2


def money(value, currency: str = "", *, signed: bool = False) -> str:
    """An amount in its currency: "$2,105,512.00", "−€12.50", "+£3.00" (signed), "¥1,235".

    Without a currency code, the number with two decimals. Unknown codes are written after the number.
    """
    d = to_decimal(value)
    if d is None:
        return ""
    code = (currency or "").strip().upper()
    if not code:
        return number(d, places=2, signed=signed)
    digits = currency_digits(code)
    magnitude = abs(d).quantize(Decimal(1).scaleb(-digits))
    if magnitude == 0:
        d = Decimal(0)
    try:
        text = _spaced(format_currency(magnitude, code, locale=current_preferences().babel_locale))
    except UnknownCurrencyError:
        text = f"{number(magnitude, places=digits)}{NBSP}{code}"
    return _sign(d, text, signed=signed)


_CODE_BEFORE = re.compile(r"^([A-Z]{2,3})(?=\d)")
_CODE_AFTER = re.compile(r"(?<=\d)([A-Z]{2,3})$")


def _spaced(text: str) -> str:
    """CLDR's currency spacing, which Babel does not apply: a letter code never touches the
    digits ("CHF 50.00", not "CHF50.00"); symbols ("$", "€") keep the locale's own spacing."""
    return _CODE_AFTER.sub(NBSP + r"\1", _CODE_BEFORE.sub(r"\1" + NBSP, text))


def price(value, currency: str = "") -> str:
    """A price: the currency's minor unit at least, more digits when the price has them (up to 6).

    Without a currency, a plain number with that precision.
    """
    d = to_decimal(value)
    if d is None:
        return ""
    code = (currency or "").strip().upper()
    digits = currency_digits(code)
    magnitude = abs(d).quantize(Decimal(1).scaleb(-MAX_DECIMALS)).normalize()
    if not code:
        return _sign(d, _price_number(magnitude, digits), signed=False)
    try:
        text = _spaced(
            format_currency(magnitude, code, locale=current_preferences().babel_locale, decimal_quantization=False)
        )
    except UnknownCurrencyError:
        text = f"{_price_number(magnitude, digits)}{NBSP}{code}"
    return _sign(d, text, signed=False)


def _price_number(magnitude: Decimal, digits: int) -> str:
    return format_decimal(magnitude, format=_pattern(digits, MAX_DECIMALS), locale=current_preferences().babel_locale)


def percent(value, *, places: int = 2, signed: bool = False) -> str:
    """A figure already in percent (3.2 means 3.2 %): "3.20 %", "+3.20 %" when ``signed``."""
    d = to_decimal(value)
    if d is None:
        return ""
    return f"{number(d, places=places, signed=signed)}{NBSP}%"


def ratio(value, *, places: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage: weights 0.123 -> "12.3 %"."""
    d = to_decimal(value)
    if d is None:
        return ""
    return percent(d * 100, places=places, signed=signed)


def performance(value, *, places: int = 2) -> str:
    """A return given as a fraction, always signed: 0.0648 -> "+6.48 %", -0.012 -> "−1.20 %"."""
    return ratio(value, places=places, signed=True)


def basis_points(value) -> str:
    d = to_decimal(value)
    return "" if d is None else f"{number(d, max_places=2)}{NBSP}bps"


# --- dates and times --------------------------------------------------------------------------------


def _as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, dt.date):
        return value
    return None


def date(value) -> str:
    """A calendar day in the person's style: "Dec 7, 2026", "7 Dec 2026", "2026-12-07"..."""
    d = _as_date(value)
    if d is None:
        return ""
    prefs = current_preferences()
    if prefs.date_format == "iso":
        return d.isoformat()
    style = prefs.date_format if prefs.date_format in ("short", "long") else "medium"
    return _babel_date(d, format=style, locale=prefs.babel_locale)


def time(value) -> str:
    """A time of day: 24-hour "14:05" with ISO dates, else the locale's ("2:05 PM", "14:05")."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.time()
    if not isinstance(value, dt.time):
        return ""
    prefs = current_preferences()
    if prefs.date_format == "iso":
        return value.strftime("%H:%M")
    return _babel_time(value, format="short", locale=prefs.babel_locale)


def datetime(value) -> str:
    """A moment: the day in the person's style and the time in the site's zone: "Dec 7, 2026, 2:05 PM"."""
    if not isinstance(value, dt.datetime):
        return date(value)
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    separator = " " if current_preferences().date_format == "iso" else ", "
    return f"{date(local)}{separator}{time(local)}"


# --- documents ----------------------------------------------------------------------------------------

_LATIN1_STAND_INS = str.maketrans(
    {MINUS: "-", "\u202f": NBSP, "\u2009": " ", "€": "EUR ", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"'}
)


def latin1(text: object) -> str:
    """``text`` for a PDF core font (Latin-1): the formatting layer's typography mapped to close
    stand-ins (U+2212 to "-", "€" to "EUR "), anything else unknown replaced, never an error."""
    return str(text).translate(_LATIN1_STAND_INS).encode("latin-1", "replace").decode("latin-1")
