"""Money arithmetic for billing: currency exponents, rounding, invoice totals.

Pure module: no Django import, so it can be tested exhaustively and used anywhere.

Rules (see docs/billing.md, "Rounding"):

- Money is ``Decimal`` (or ``int``), never ``float``: a float argument raises ``TypeError``.
- Every amount that reaches a customer is rounded exactly once, to the minor unit of its
  currency (ISO 4217 exponent: 2 for EUR/USD, 0 for JPY, 3 for KWD, ...), with ROUND_HALF_UP,
  i.e. halves are rounded away from zero (``0.005 -> 0.01``, ``-0.005 -> -0.01``), so a credit
  and the matching charge of the same magnitude round to the same magnitude.
- Intermediate results are exact (``fractions.Fraction``), never rounded by a ``Decimal``
  context, so "rounded once" holds for any number of digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol


class UnknownCurrency(ValueError):
    """The currency code is not an ISO 4217 currency that Codex knows the exponent of."""


# ISO 4217 minor-unit exponents (active currencies with a minor unit; funds codes included).
# A code missing here is rejected rather than assumed to have 2 decimals: a typo in a plan's
# currency must fail.
_CODES_BY_EXPONENT = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: """
        AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN
        BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
        GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP
        LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR
        NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
        SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR
        ZMW ZWG ZWL
    """,
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent for exponent, codes in _CODES_BY_EXPONENT.items() for code in codes.split()
}


def currency_exponent(code: str) -> int:
    """Number of decimal places of the currency's minor unit (``"EUR" -> 2``, ``"JPY" -> 0``).

    Case-insensitive (Stripe sends ``"usd"``). Raises ``UnknownCurrency`` for any other code.
    """
    if not isinstance(code, str):
        raise TypeError(f"currency code must be a str, not {type(code).__name__}")
    try:
        return CURRENCY_EXPONENTS[code.upper()]
    except KeyError:
        raise UnknownCurrency(f"unknown currency code {code!r}") from None


def to_fraction(value: Decimal | int, *, name: str = "amount") -> Fraction:
    """Exact rational value of a money-like number; refuses floats and non-finite decimals."""
    # bool is an int subclass; True as an amount is always a bug.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or int, not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return Fraction(value)


def round_half_up(value: Fraction, exponent: int) -> Decimal:
    """Round an exact value to ``exponent`` decimal places, halves away from zero.

    Exact (no ``Decimal`` context involved). The result always carries exactly ``exponent``
    places (``Decimal("5.00")``, ``Decimal("5")``) and is never negative zero.
    """
    if exponent < 0:
        raise ValueError("exponent must be >= 0")
    scaled = abs(value) * 10**exponent
    units, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        units += 1
    negative = value < 0 and units != 0
    return Decimal((int(negative), tuple(int(d) for d in str(units)), -exponent))


def quantize_money(amount: Decimal | int, currency: str) -> Decimal:
    """Round ``amount`` once to the minor unit of ``currency`` with ROUND_HALF_UP.

    ``quantize_money(Decimal("0.125"), "EUR") == Decimal("0.13")``;
    ``quantize_money(Decimal("-0.125"), "EUR") == Decimal("-0.13")``;
    ``quantize_money(Decimal("1234.5"), "JPY") == Decimal("1235")``.
    Raises ``TypeError`` for floats, ``ValueError`` for NaN/infinity, ``UnknownCurrency``.
    """
    return round_half_up(to_fraction(amount), currency_exponent(currency))


class InvoiceLineLike(Protocol):
    """Anything with a quantity and a unit amount: ``LineInput`` or an invoice line model row
    (read-only: a frozen ``LineInput`` qualifies)."""

    @property
    def quantity(self) -> Decimal | int: ...

    @property
    def unit_amount(self) -> Decimal | int: ...


@dataclass(frozen=True, slots=True)
class LineInput:
    quantity: Decimal | int
    unit_amount: Decimal | int
    description: str = ""


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    currency: str
    line_amounts: tuple[Decimal, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def compute_invoice_totals(
    lines: Iterable[InvoiceLineLike], tax_rate: Decimal | int, *, currency: str
) -> InvoiceTotals:
    """Totals of an invoice, each figure rounded once to the currency's minor unit.

    - each line amount = round(quantity * unit_amount), rounded once per line;
    - subtotal = sum of the rounded line amounts (so the printed lines always add up to it);
    - tax = round(subtotal * tax_rate), computed once on the subtotal, never per line;
    - total = subtotal + tax (both already rounded, so the sum is exact).

    ``tax_rate`` is a fraction (``Decimal("0.20")`` for 20 %), not a percentage, and must be >= 0.
    Lines may be negative (credits such as a proration credit). Raises ``TypeError`` on any float.
    """
    exponent = currency_exponent(currency)
    rate = to_fraction(tax_rate, name="tax_rate")
    if rate < 0:
        raise ValueError(f"tax_rate must be >= 0, got {tax_rate}")

    line_amounts = tuple(
        round_half_up(
            to_fraction(line.quantity, name="quantity") * to_fraction(line.unit_amount, name="unit_amount"),
            exponent,
        )
        for line in lines
    )
    subtotal = round_half_up(sum((Fraction(a) for a in line_amounts), Fraction(0)), exponent)
    tax = round_half_up(Fraction(subtotal) * rate, exponent)
    total = round_half_up(Fraction(subtotal) + Fraction(tax), exponent)
    return InvoiceTotals(
        currency=currency.upper(),
        line_amounts=line_amounts,
        subtotal=subtotal,
        tax=tax,
        total=total,
    )
