"""The portfolio pages' filter names, served by the one formatting layer (``codex.formatting``).

Kept so templates that load ``portfolio_format`` format like every other page; new templates use
``codex_ui``'s filters (``money:currency``, ``price:currency``, ``qty``, ``ret_pct``...).
"""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html

from codex import formatting as fmt
from codex.templatetags import codex_ui

register = template.Library()


@register.filter
def money(value, currency="") -> str:
    """An amount: with a currency code "$12,345.68"; with decimal places (older calls) "12,345.68"; "—" for None."""
    if value is None or value == "":
        return "—"
    return codex_ui.money(value, 2 if currency in (None, "") else currency)


@register.filter
def qty(value) -> str:
    return fmt.quantity(value) or "—"


@register.filter
def price(value, currency: str = "") -> str:
    return fmt.price(value, currency) or "—"


@register.filter
def pct(value, places: int = 2):
    """A return given as a fraction, signed and coloured: 0.0123 -> "+1.23 %"."""
    if value is None:
        return "—"
    return codex_ui.ret_pct(value) if int(places) == 2 else fmt.ratio(value, places=int(places), signed=True)


@register.filter
def percent(value, places: int = 1) -> str:
    """A fraction as a plain percentage (weights, risk figures): 0.123 -> "12.3 %"."""
    if value is None:
        return "—"
    return fmt.ratio(value, places=int(places))


@register.filter
def signed(value, currency: str = ""):
    """A gain or loss, signed and coloured: "+1,234.50" (or "+$1,234.50" with a currency)."""
    if value is None:
        return "—"
    d = Decimal(value)
    css = "gain" if d > 0 else "loss" if d < 0 else ""
    return format_html('<span class="{}">{}</span>', css, fmt.money(d, currency, signed=True))


@register.filter
def ret(period) -> Decimal | None:
    """The figure to show of a PeriodReturn (annualised above one year), or None."""
    return None if period is None else period.value


@register.filter
def label(value) -> str:
    return str(value).replace("_", " ").capitalize() if value else "—"
