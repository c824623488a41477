"""How billing shows numbers to people: money in its currency's minor unit, grouped integers."""

from __future__ import annotations

from decimal import Decimal

from .money import UnknownCurrency, quantize_money


def display_money(amount, currency: str = "USD") -> str:
    """``1234.5, "USD"`` -> ``1,234.50``; ``1235, "JPY"`` -> ``1,235``. Prices finer than the minor
    unit (a per-1,000 price of 0.0125) keep their digits instead of being rounded away."""
    if amount is None or amount == "":
        return ""
    value = Decimal(amount)
    try:
        rounded = quantize_money(value, currency)
    except UnknownCurrency:
        rounded = value
    shown = rounded if rounded == value else value.normalize()
    return f"{shown:,}"


def display_count(value) -> str:
    """``1000000`` -> ``1,000,000``; None (no limit) -> ``Unlimited``."""
    if value is None:
        return "Unlimited"
    return f"{int(value):,}"
