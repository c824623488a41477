"""Display helpers for billing templates: money in its currency's minor unit, grouped integers."""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.money import UnknownCurrency, quantize_money

register = template.Library()


@register.filter
def money(amount, currency: str = "USD") -> str:
    """``1234.5|money:"USD"`` -> ``1,234.50``; ``1235|money:"JPY"`` -> ``1,235``. Prices finer than the
    minor unit (a per-1,000 price of 0.0125) keep their digits instead of being rounded away."""
    if amount is None or amount == "":
        return ""
    value = Decimal(amount)
    try:
        rounded = quantize_money(value, currency)
    except UnknownCurrency:
        rounded = value
    shown = rounded if rounded == value else value.normalize()
    return f"{shown:,}"


@register.filter
def thousands(value) -> str:
    """``1000000`` -> ``1,000,000``; None -> ``Unlimited``."""
    if value is None:
        return "Unlimited"
    return f"{int(value):,}"
