"""Display filters for money, quantities and returns (numbers stay Decimal until shown)."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def money(value, places: int = 2) -> str:
    """12345.678 -> "12,345.68"; None -> "—"."""
    if value is None or value == "":
        return "—"
    q = Decimal(value).quantize(Decimal(1).scaleb(-int(places)))
    return f"{q:,.{int(places)}f}"


@register.filter
def qty(value) -> str:
    if value is None:
        return "—"
    d = Decimal(value).normalize()
    return f"{d:,f}" if d == d.to_integral() else f"{d:f}"


@register.filter
def pct(value, places: int = 2):
    """A fraction as a signed percentage, coloured: 0.0123 -> "+1.23 %"."""
    if value is None:
        return "—"
    d = Decimal(value) * 100
    text = f"{d:+,.{int(places)}f} %"
    css = "gain" if d > 0 else "loss" if d < 0 else ""
    return format_html('<span class="{}">{}</span>', css, text)


@register.filter
def percent(value, places: int = 1) -> str:
    """A fraction as a plain percentage (weights, risk figures): 0.123 -> "12.3 %"."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:,.{int(places)}f} %"


@register.filter
def signed(value):
    if value is None:
        return "—"
    d = Decimal(value)
    css = "gain" if d > 0 else "loss" if d < 0 else ""
    return format_html('<span class="{}">{}</span>', css, f"{d.quantize(Decimal('0.01')):+,.2f}")


@register.filter
def ret(period) -> Decimal | None:
    """The figure to show of a PeriodReturn (annualised above one year), or None."""
    return None if period is None else period.value


@register.filter
def label(value) -> str:
    return str(value).replace("_", " ").capitalize() if value else "—"
