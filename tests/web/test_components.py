"""Pure pieces of the design system: charts, money/percent filters, sort headers, query strings."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from decimal import Decimal

from django.template import Context, Template
from django.test import RequestFactory

from codex.charts import (
    Series,
    bar_chart,
    category_label,
    compact,
    date_ticks,
    hbar_chart,
    line_chart,
    range_start,
    range_tabs,
    sparkline,
    stacked_bar_chart,
)
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


def test_line_chart_is_accessible_svg_without_inline_styles_with_one_date_axis_and_a_table():
    chart = line_chart(
        [Series("Value", [(date(2026, 1, 1), 100), (date(2026, 6, 1), 130), (date(2026, 11, 1), 90)])],
        title="Value <of> book",
        description="From 100 to 90",
        currency="USD",
    )
    assert chart.startswith('<figure class="chart-figure"') and '<svg class="chart"' in chart and 'role="img"' in chart
    assert "<title id=" in chart and "Value &lt;of&gt; book" in chart
    assert "style=" not in chart and "<style" not in chart
    assert chart.count("<polyline") == 1
    # one date axis: month ticks, each date named once (no "first date / last date" pair)
    ticks = re.findall(
        r'<text class="axis-label" x="[\d.]+" y="\d+" text-anchor="\w+">([A-Z][a-z]{2}(?: \d{4})?)</text>', chart
    )
    assert ticks[0] == "Jan 2026" and "May" in ticks and "Nov" in ticks and len(ticks) == len(set(ticks)) >= 4
    # the table behind the chart, for screen readers, with formatted figures
    assert '<details class="chart-data">' in chart and '<td class="num">130.00 USD</td>' in chart
    # the points for the crosshair: date, x, y, value
    data = json.loads(html.unescape(re.search(r'data-chart="([^"]+)"', chart).group(1)))
    assert data["series"][0]["label"] == "Value" and [p[0] for p in data["series"][0]["points"]] == [
        "2026-01-01",
        "2026-06-01",
        "2026-11-01",
    ]
    assert data["series"][0]["points"][1][3] == 130.0 and data["unit"] == "USD"


def test_date_ticks_pick_days_months_or_years_from_the_span():
    assert [label for _d, label in date_ticks(date(2026, 3, 1), date(2026, 3, 29))][:2] == ["1 Mar", "6 Mar"]
    months = date_ticks(date(2025, 11, 15), date(2026, 5, 2))
    assert [label for _d, label in months] == ["Dec 2025", "Jan 2026", "Feb", "Mar", "Apr", "May"]
    years = date_ticks(date(2016, 5, 1), date(2026, 5, 1))
    assert [label for _d, label in years] == ["2018", "2020", "2022", "2024", "2026"]


def test_range_tabs_start_dates_and_links():
    first, last = date(2020, 2, 10), date(2026, 5, 31)
    assert range_start("1M", first=first, last=last) == date(2026, 4, 30)
    assert range_start("3M", first=first, last=last) == date(2026, 2, 28)
    assert range_start("YTD", first=first, last=last) == date(2025, 12, 31)
    assert range_start("1Y", first=first, last=last) == date(2025, 5, 31)
    assert range_start("3Y", first=first, last=last) == date(2023, 5, 31)
    assert range_start("ALL", first=first, last=last) == first
    assert range_start("3Y", first=date(2025, 1, 1), last=last) == date(2025, 1, 1)  # never before inception
    tabs = range_tabs("YTD", anchor="growth", query={"by": "sector"})
    assert [t for t in re.findall(r">([^<]+)</a>", tabs)] == ["1M", "3M", "YTD", "1Y", "3Y", "All"]
    assert '<a href="?by=sector&amp;range=YTD#growth" aria-current="page">YTD</a>' in tabs


def test_horizontal_bars_keep_whole_labels_and_friendly_names():
    chart = hbar_chart(
        [
            ("Precious metals", Decimal("12.5")),
            ("Government bonds", 30),
            ("Lovelace growth portfolio of the family", 57.5),
        ],
        title="Allocation",
        percent=True,
        width=480,
    )
    text = re.sub(r"<[^>]+>", " ", chart)
    for label in ("Precious metals", "Government bonds"):
        assert label in text
    # a long label wraps onto lines (tspans), none cut: every word is there
    long = re.search(
        r'<text class="axis-label cat-label"[^>]*>((?:<tspan[^>]*>[^<]*</tspan>)+)</text>',
        chart[chart.index("Government") :],
    )
    words = " ".join(re.findall(r">([^<]*)</tspan>", long.group(1)))
    assert words.replace("- ", "") == "Lovelace growth portfolio of the family" and long.group(1).count("<tspan") >= 2
    assert "12.5 %" in chart and "57.5 %" in chart and 'class="chart-data"' in chart
    assert category_label("etf") == "ETF" and category_label("equity") == "Equity"
    assert category_label("real_estate") == "Real estate" and category_label("") == "Unclassified"
    assert category_label("DE", dimension="country") == "Germany"
    assert category_label("EUR", dimension="currency") == "Euro (EUR)"
    assert category_label("cash", labels={"cash": "Cash equivalent"}) == "Cash equivalent"


def test_bar_chart_colours_negative_bars_apart_escapes_labels_and_rotates_crowded_ones():
    chart = bar_chart([("A&B", Decimal("2.5")), ("C", Decimal("-1.25"))], title="Returns", percent=True)
    assert chart.count('class="bar-pos"') == 1 and chart.count('class="bar-neg"') == 1
    assert "A&amp;B: +2.50 %" in chart and "C: -1.25 %" in chart
    assert "style=" not in chart and "rotate(" not in chart
    crowded = bar_chart([(f"Month {i:02d} 2026", i) for i in range(1, 13)], title="Monthly", width=480)
    assert crowded.count("rotate(-40") == 12  # every label kept, turned instead of overlapping


def test_stacked_bars_and_sparkline():
    chart = stacked_bar_chart(
        ["Jan 2026", "Feb 2026"], [("Pro", [100, 120]), ("Starter", [20, 0])], title="Revenue", currency="EUR"
    )
    assert chart.count('class="stack-1"') == 2 and chart.count('class="stack-2"') == 2
    assert "Feb 2026: Pro 120.00 EUR" in chart and '<span class="key stack-key-2"></span>Starter' in chart
    spark = sparkline([(date(2026, 1, 1), 10), (date(2026, 1, 2), 12), (date(2026, 1, 3), 9)], label="Value <1y>")
    assert 'class="sparkline spark-down"' in spark and 'aria-label="Value &lt;1y&gt;"' in spark
    assert sparkline([(date(2026, 1, 1), 10)], label="x") == ""


def test_charts_without_data_say_so():
    assert "No data" in line_chart([], title="x")
    assert "No data" in bar_chart([], title="x")
    assert "No data" in hbar_chart([], title="x")


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
