"""Pure pieces of the design system: charts, money/percent filters, sort headers, query strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.template import Context, Template
from django.test import RequestFactory

from codex.charts import Series, bar_chart, compact, line_chart
from codex.templatetags.codex_ui import initials, money, ratio_pct, ratio_pct_signed, signed_money, signed_pct


def render(source: str, path: str = "/crm/contacts/", **context) -> str:
    request = RequestFactory().get(path)
    return Template("{% load codex_ui %}" + source).render(Context({"request": request, **context}))


def test_compact_numbers():
    assert [compact(v) for v in (0, 950, 1234, 1_234_567, -2_500_000_000, Decimal("12.5"))] == [
        "0",
        "950",
        "1.2k",
        "1.2M",
        "-2.5B",
        "12.5",
    ]


def test_line_chart_is_accessible_svg_without_inline_styles():
    svg = line_chart(
        [Series("Value", [(date(2026, 1, 1), 100), (date(2026, 6, 1), 130), (date(2026, 11, 1), 90)])],
        title="Value <of> book",
        description="From 100 to 90",
    )
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "<title id=" in svg and "Value &lt;of&gt; book" in svg
    assert "style=" not in svg and "<style" not in svg
    assert svg.count("<polyline") == 1 and "01 Jan 2026" in svg and "01 Nov 2026" in svg


def test_bar_chart_colours_negative_bars_apart_and_escapes_labels():
    svg = bar_chart([("A&B", Decimal("2.5")), ("C", Decimal("-1.25"))], title="Returns", percent=True)
    assert svg.count('class="bar-pos"') == 1 and svg.count('class="bar-neg"') == 1
    assert "A&amp;B: 2.50%" in svg and "C: -1.25%" in svg
    assert "style=" not in svg


def test_charts_without_data_say_so():
    assert "No data" in line_chart([], title="x")
    assert "No data" in bar_chart([], title="x")


def test_money_and_percent_filters():
    # The one formatting layer (codex.formatting, decision 1050): cents always, the currency's
    # symbol per locale, a real minus, a no-break space before "%".
    assert money(Decimal("1234567.891"), "USD") == "$1,234,567.89"
    assert money(Decimal("12.5"), "EUR") == "€12.50"
    assert money(Decimal("-50"), "CHF") == "−CHF 50.00"
    assert money(None, "USD") == ""
    assert signed_money(Decimal("10"), "GBP") == "+£10.00"
    assert signed_pct(Decimal("3.14159")) == "+3.14 %"
    assert signed_pct(Decimal("-0.5")) == "−0.50 %"
    assert signed_pct(None) == ""
    assert ratio_pct(Decimal("0.1234")) == "12.3 %"
    assert ratio_pct_signed(Decimal("-0.0123")) == "−1.23 %" and ratio_pct_signed(None) == ""
    assert initials("Acme Wealth Partners") == "AW" and initials("") == "C"


def test_sort_header_toggles_direction_keeps_filters_and_resets_page():
    html = render('{% sort_header "name" "Name" %}', "/crm/contacts/?q=ann&page=3")
    assert 'href="?q=ann&amp;sort=name"' in html and "aria-sort" not in html
    html = render('{% sort_header "name" "Name" %}', "/crm/contacts/?q=ann&sort=name")
    assert 'aria-sort="ascending"' in html and "sort=-name" in html
    html = render('{% sort_header "name" "Name" numeric=True %}', "/crm/contacts/?sort=-name")
    assert 'aria-sort="descending"' in html and 'class="num"' in html and "sort=name" in html


def test_nav_link_marks_the_current_section():
    html = render('{% nav_link "/crm/contacts/" "Clients" %}{% nav_link "/" "Dashboard" %}', "/crm/contacts/7/")
    assert '<a href="/crm/contacts/" aria-current="page">Clients</a>' in html
    assert '<a href="/">Dashboard</a>' in html


def test_pagination_include_keeps_query_and_marks_current_page():
    from django.core.paginator import Paginator

    page = Paginator(list(range(100)), 10).page(4)
    html = render('{% include "includes/pagination.html" with page_obj=page %}', "/x/?q=a&page=4", page=page)
    assert "Showing 31–40 of 100" in html
    assert 'href="?q=a&amp;page=3" rel="prev"' in html and 'href="?q=a&amp;page=5" rel="next"' in html
    assert '<span aria-current="page"><span class="sr-only">Page </span>4</span>' in html
