"""Template tags of the design system: navigation links, sortable headers, query strings, theme.

Load with ``{% load codex_ui %}``. Pair the sortable header with ``codex.tables.table_page`` in the
view, and ``{% include "includes/pagination.html" %}`` under the table.
"""

from __future__ import annotations

import uuid

from django import template
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from codex import formatting as fmt
from codex.idempotent_forms import FIELD as IDEMPOTENCY_FIELD
from codex.tables import SORT_PARAM

register = template.Library()

THEMES = ("light", "dark")
THEME_COOKIE = "codex_theme"


@register.simple_tag(takes_context=True)
def nav_link(context, href: str, label: str, exact: bool = False):
    """A navigation link marked ``aria-current="page"`` when the current path is under ``href``."""
    request = context.get("request")
    path = request.path if request is not None else ""
    current = path == href if exact or href == "/" else path.startswith(href)
    if current:
        return format_html('<a href="{}" aria-current="page">{}</a>', href, label)
    return format_html('<a href="{}">{}</a>', href, label)


@register.simple_tag(takes_context=True)
def query_string(context, **changes) -> str:
    """The current query string with ``changes`` applied (None removes a key), starting with ``?``."""
    request = context.get("request")
    params = request.GET.copy() if request is not None else None
    if params is None:
        params = QueryDict(mutable=True)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_header(context, field: str, label: str, numeric: bool = False):
    """A ``<th>`` whose link sorts by ``field`` (toggling direction) and keeps the other filters.

    The header carries ``aria-sort`` when the table is sorted by it, so screen readers announce it.
    Sorting resets the page to the first one.
    """
    request = context.get("request")
    current = request.GET.get(SORT_PARAM, "") if request is not None else ""
    current = current or context.get("table_sort", "")
    if current == field:
        next_sort, aria, arrow = f"-{field}", "ascending", " ▲"
    elif current == f"-{field}":
        next_sort, aria, arrow = field, "descending", " ▼"
    else:
        next_sort, aria, arrow = field, None, ""
    href = query_string(context, **{SORT_PARAM: next_sort, "page": None})
    cls = mark_safe(' class="num"' if numeric else "")  # noqa: S308 - a constant
    if aria:
        return format_html(
            '<th scope="col"{} aria-sort="{}"><a class="sort" href="{}">{}<span aria-hidden="true">{}</span></a></th>',
            cls,
            aria,
            href,
            label,
            arrow,
        )
    return format_html('<th scope="col"{}><a class="sort" href="{}">{}</a></th>', cls, href, label)


@register.simple_tag(takes_context=True)
def theme(context) -> str:
    """The theme chosen with the switch (``light``/``dark``), or "" to follow the system."""
    request = context.get("request")
    value = request.COOKIES.get(THEME_COOKIE, "") if request is not None else ""
    return value if value in THEMES else ""


@register.filter
def initials(name: str) -> str:
    words = [w for w in str(name or "").replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "C"


# --- the formatting layer's filters (codex.formatting; docs/decisions/1050) ---------------------------


def _places_or_currency(arg) -> tuple[int | None, str]:
    """``money`` takes a currency code; an older call passing decimal places still gets a number."""
    if isinstance(arg, int) and not isinstance(arg, bool):
        return arg, ""
    text = str(arg or "").strip()
    return (int(text), "") if text.isdigit() else (None, text)


@register.filter
def money(value, currency="") -> str:
    """1234567.891, "USD" -> "$1,234,567.89" (the currency's minor unit, the person's locale)."""
    places, code = _places_or_currency(currency)
    if places is not None:
        return fmt.number(value, places=places)
    return fmt.money(value, code)


@register.filter
def signed_money(value, currency: str = "") -> str:
    """A change of money with its sign: "+$1,200.00", "−$80.00"."""
    return fmt.money(value, currency, signed=True)


@register.filter
def price(value, currency: str = "") -> str:
    """A price with the instrument's precision: "$150.00", "$0.12345"."""
    return fmt.price(value, currency)


@register.filter
def qty(value) -> str:
    """A quantity with the digits it has: "1,250", "0.5"."""
    return fmt.quantity(value)


@register.filter
def number(value, places=None) -> str:
    return fmt.number(value, places=None if places in (None, "") else int(places))


@register.filter
def count(value) -> str:
    """A whole count with grouping: "1,000,000"."""
    return fmt.count(value)


@register.filter
def bps(value) -> str:
    return fmt.basis_points(value)


@register.filter
def signed_pct(value) -> str:
    """A figure already in percent (3.2 means 3.2 %) with its sign: "+3.20 %"; "" for None."""
    return fmt.percent(value, signed=True)


@register.filter
def pct_value(value, places=2) -> str:
    """A figure already in percent, unsigned: 45 -> "45.00 %"."""
    return fmt.percent(value, places=int(places))


@register.filter
def ratio_pct(value, places=1) -> str:
    """A ratio (0.123) as a percentage: "12.3 %"; "" for None."""
    return fmt.ratio(value, places=int(places))


@register.filter
def ratio_pct_signed(value) -> str:
    """A ratio (-0.0123) as a signed percentage: "−1.23 %"; "" for None."""
    return fmt.performance(value)


@register.filter
def ret_pct(value, unit: str = "fraction"):
    """A return, signed and coloured: ``<span data-format="return">+6.48 %</span>``; "—" when there
    is none. ``value`` is a fraction (0.0648), or already in percent with ``ret_pct:"percent"``.
    The data attribute lets the page test check every return shown."""
    d = fmt.to_decimal(value)
    if d is not None and unit == "percent":
        d = d / 100
    text = fmt.performance(d)
    if not text or d is None:
        return "—"
    css = "gain" if d > 0 else "loss" if d < 0 else ""
    return format_html('<span class="ret {}" data-format="return">{}</span>', css, text)


@register.filter
def local_date(value) -> str:
    """A day in the person's date style (``User.date_format``, else their locale's)."""
    return fmt.date(value)


@register.filter
def local_datetime(value) -> str:
    """A moment in the person's date style with the time of day."""
    return fmt.datetime(value)


@register.filter
def local_time(value) -> str:
    return fmt.time(value)


@register.simple_tag(takes_context=True)
def idempotency_field(context):
    """The hidden ``idempotency_key`` of a create form (``codex.idempotent_forms``): the key the
    view put on the request (``@idempotent_form``: a fresh one, or the one a redisplayed form was
    sent with), else a fresh key for a form that posts to another view. Each form gets its own."""
    request = context.get("request")
    key = getattr(request, "idempotency_key", None) or uuid.uuid4().hex
    return format_html('<input type="hidden" name="{}" value="{}">', IDEMPOTENCY_FIELD, key)
