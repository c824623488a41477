"""Template tags of the design system: navigation links, sortable headers, query strings, theme.

Load with ``{% load codex_ui %}``. Pair the sortable header with ``codex.tables.table_page`` in the
view, and ``{% include "includes/pagination.html" %}`` under the table.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django import template
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _money_text(value, currency: str, signed: bool = False) -> str:

    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    places = 0 if abs(amount) >= 10000 else 2
    text = f"{abs(amount):,.{places}f}"
    symbol = CURRENCY_SYMBOLS.get((currency or "").upper())
    body = f"{symbol}{text}" if symbol else f"{text} {currency}".strip()
    if amount < 0:
        return f"−{body}"
    return f"+{body}" if signed and amount > 0 else body


@register.filter
def money(value, currency: str = "") -> str:
    """1234567.891, "USD" -> "$1,234,568" (whole units from 10,000 up, cents below)."""
    return _money_text(value, currency)


@register.filter
def signed_money(value, currency: str = "") -> str:
    return _money_text(value, currency, signed=True)


@register.filter
def signed_pct(value) -> str:
    """A percentage (3.2 means 3.2 %) with its sign: "+3.20%"; "" for None."""
    if value is None or value == "":
        return ""
    v = float(value)
    if v < 0:
        return f"−{abs(v):.2f}%"
    return f"+{v:.2f}%" if v > 0 else "0.00%"


@register.filter
def ratio_pct(value) -> str:
    """A ratio (0.123) as a percentage: "12.3%"; "" for None."""
    if value is None or value == "":
        return ""
    return f"{float(value) * 100:.1f}%"


@register.filter
def ratio_pct_signed(value) -> str:
    """A ratio (-0.0123) as a signed percentage: "−1.23%"; "" for None."""
    if value is None or value == "":
        return ""
    return signed_pct(float(value) * 100)


@register.simple_tag(takes_context=True)
def idempotency_field(context):
    """The hidden ``idempotency_key`` of a create form (``codex.idempotent_forms``): the key the
    view put on the request (``@idempotent_form``: a fresh one, or the one a redisplayed form was
    sent with), else a fresh key for a form that posts to another view. Each form gets its own."""
    request = context.get("request")
    key = getattr(request, "idempotency_key", None) or uuid.uuid4().hex
    return format_html('<input type="hidden" name="{}" value="{}">', IDEMPOTENCY_FIELD, key)
