"""The product's one chart module: server-side SVG for the staff UI, the operator console and
printable pages. Small, themeable, accessible; JavaScript only adds hover (``static/js/charts.js``).

Hand-made rather than pygal (see docs/decisions/0401 and 1060): pygal's SVG carries inline
``<style>`` and ``style=`` attributes that the page's Content-Security-Policy (``style-src 'self'``)
blocks when the SVG is inlined, and its colours would not follow the light/dark theme. Here every
colour is a CSS class (``static/css/charts.css``), every chart is a ``<figure>`` holding the SVG
(with ``<title>``/``<desc>``) and a data table for screen readers and for reading exact figures.

- ``line_chart``: date series on one date axis (month or year ticks chosen from the span), the
  points carried in ``data-chart`` so the script can draw a crosshair and a tooltip. ``RANGES`` and
  ``range_start`` give the range tabs (1M, 3M, YTD, 1Y, 3Y, All) their start dates.
- ``hbar_chart``: categories as horizontal bars; labels are wrapped onto up to three lines, never cut.
- ``bar_chart``: values over ordered labels (months); labels rotate when they would collide.
- ``stacked_bar_chart``: several series stacked per label (revenue per plan per month).
- ``sparkline``: a tiny line for a figure in a card.
- ``category_label``: friendly names for category codes ("etf" -> "ETF", "DE" -> "Germany").

Pure functions of their inputs (no ORM), returning safe markup. The SVG scales to its container, so
pick ``width`` near the container's width in CSS pixels to keep the 12 px labels legible (the
dashboard's half-width cards use 480; full-width page charts the default 640).
"""

from __future__ import annotations

import calendar
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import count

from babel import Locale
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal
_ids = count(1)

#: Product-wide category codes and their names (asset classes, kinds, common abbreviations).
CATEGORY_LABELS: dict[str, str] = {
    "equity": "Equity",
    "bond": "Bonds",
    "fund": "Funds",
    "etf": "ETF",
    "commodity": "Commodities",
    "real_estate": "Real estate",
    "cash": "Cash",
    "crypto": "Crypto",
    "other": "Other",
    "reit": "REIT",
    "": "Unclassified",
}

#: The range tabs of a line chart, in order (``range_start`` gives each its first day).
RANGES: tuple[str, ...] = ("1M", "3M", "YTD", "1Y", "3Y", "ALL")
RANGE_NAMES = {"1M": "1M", "3M": "3M", "YTD": "YTD", "1Y": "1Y", "3Y": "3Y", "ALL": "All"}


def category_label(code: object, *, dimension: str = "", labels: Mapping[str, str] | None = None) -> str:
    """A friendly name for a category code: ``labels`` first, then the product's map, country and
    currency codes by CLDR (``dimension`` "country" or "currency"), else the code made readable."""
    text = "" if code is None else str(code)
    if labels and text in labels:
        return labels[text]
    if text.lower() in CATEGORY_LABELS and dimension not in ("country", "currency"):
        return CATEGORY_LABELS[text.lower()]
    english = Locale("en")
    if dimension == "country" and len(text) == 2 and text.upper() in english.territories:
        return english.territories[text.upper()]
    if dimension == "currency" and len(text) == 3:
        name = english.currencies.get(text.upper())
        return f"{name} ({text.upper()})" if name else text.upper()
    if not text:
        return CATEGORY_LABELS[""]
    if "_" in text or text.islower():  # a code: "real_estate" -> "Real estate"
        return text.replace("_", " ").strip().capitalize()
    return text  # already a name ("Health care", "ETF providers", "USD")


def compact(value: Number, *, digits: int = 1) -> str:
    """1234567 -> "1.2M"; 950 -> "950"; keeps the sign."""
    v = float(value)
    sign = "-" if v < 0 else ""
    v = abs(v)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= threshold:
            text = f"{v / threshold:.{digits}f}".rstrip("0").rstrip(".")
            return f"{sign}{text}{suffix}"
    if v == int(v):
        return f"{sign}{int(v)}"
    return f"{sign}{v:.{digits}f}"


def _figure(value: float, *, percent: bool, currency: str, exact: bool = True) -> str:
    """One value as the chart's labels and table show it."""
    if percent:
        return f"{value:+,.2f} %" if exact else f"{compact(value)} %"
    if exact:
        text = f"{value:,.2f}"
        return f"{text} {currency}" if currency else text
    return f"{compact(value)} {currency}".strip() if currency else compact(value)


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """Round axis values covering ``lo`` to ``hi`` in about ``n`` steps of 1, 2, 2.5 or 5 x 10^k."""
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            step = m * magnitude
            break
    start = (lo // step) * step
    ticks: list[float] = []
    t = start
    while t <= hi + step * 0.5 and len(ticks) < 12:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def date_ticks(first: date, last: date, *, max_ticks: int = 6) -> list[tuple[date, str]]:
    """Ticks of one date axis from ``first`` to ``last``: days for a few weeks, month starts for up
    to about three years, year starts beyond. Labels never repeat a date twice."""
    span = (last - first).days
    if span <= 0:
        return [(first, f"{first.day} {first:%b %Y}")]
    if span <= 62:
        step = max(1, math.ceil(span / max_ticks))
        days = [first + timedelta(days=i) for i in range(0, span + 1, step)]
        return [(d, f"{d.day} {d:%b}") for d in days]
    if span <= 3 * 366:
        months = (last.year - first.year) * 12 + last.month - first.month
        step = next(s for s in (1, 2, 3, 4, 6, 12) if months / s <= max_ticks)
        d = date(first.year, first.month, 1)
        if d < first:
            d = _add_months(d, 1)
        while (d.month - 1) % step:
            d = _add_months(d, 1)
        out: list[tuple[date, str]] = []
        while d <= last:
            out.append((d, f"{d:%b %Y}" if d.month == 1 or not out else f"{d:%b}"))
            d = _add_months(d, step)
        return out
    years = last.year - first.year
    step = next(s for s in (1, 2, 5, 10, 20, 50) if years / s <= max_ticks)
    start_year = first.year + 1 if (first.month, first.day) != (1, 1) else first.year
    start_year += (-start_year) % step
    return [(date(y, 1, 1), str(y)) for y in range(start_year, last.year + 1, step)]


def range_start(code: str, *, first: date, last: date) -> date:
    """First day shown by a range tab ending on ``last`` (never before ``first``)."""
    starts = {
        "1M": _add_months(last, -1),
        "3M": _add_months(last, -3),
        "YTD": date(last.year, 1, 1) - timedelta(days=1),
        "1Y": _add_months(last, -12),
        "3Y": _add_months(last, -36),
    }
    return max(first, starts.get(code, first))


def range_tabs(current: str, *, param: str = "range", anchor: str = "", query: Mapping[str, str] | None = None) -> str:
    """The range tabs as links (work without JavaScript): ``?range=1Y#anchor``, keeping ``query``."""
    items = []
    for code in RANGES:
        params = {k: v for k, v in (query or {}).items() if k != param}
        params[param] = code
        href = (
            "?" + "&amp;".join(f"{escape(k)}={escape(v)}" for k, v in params.items()) + (f"#{anchor}" if anchor else "")
        )
        current_attr = ' aria-current="page"' if code == current else ""
        items.append(f'<li><a href="{href}"{current_attr}>{RANGE_NAMES[code]}</a></li>')
    return mark_safe(f'<ul class="tabs chart-ranges" aria-label="Range">{"".join(items)}</ul>')  # noqa: S308


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, Number]]


def _svg_open(uid: int, width: int, height: int, title: str, description: str, extra: str = "") -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart{uid}-t chart{uid}-d" preserveAspectRatio="xMidYMid meet"{extra}>'
        f'<title id="chart{uid}-t">{escape(title)}</title><desc id="chart{uid}-d">{escape(description)}</desc>'
    )


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join(
        "<tr>"
        + f'<th scope="row">{escape(r[0])}</th>'
        + "".join(f'<td class="num">{escape(c)}</td>' for c in r[1:])
        + "</tr>"
        for r in rows
    )
    return (
        f'<details class="chart-data"><summary>Data table</summary><div class="scroll"><table class="table">'
        f"<caption>{escape(caption)}</caption><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _empty() -> SafeString:
    return format_html('<p class="empty compact">{}</p>', "No data to chart yet.")


def _y_axis(parts: list[str], ticks, y, *, left: int, right_x: float, percent: bool, currency: str) -> None:
    for t in ticks:
        label = f"{compact(t)}%" if percent else compact(t)
        parts.append(
            f'<line class="grid-line" x1="{left}" x2="{right_x}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text class="axis-label" x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )


def _thin(points: Sequence[tuple[date, Number]], limit: int) -> list[tuple[date, Number]]:
    step = max(1, math.ceil(len(points) / limit))
    out = list(points[::step])
    if points and out[-1] != points[-1]:
        out.append(points[-1])
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    height: int = 240,
    percent: bool = False,
    area: bool = True,
    currency: str = "",
    max_points: int = 400,
    table: bool = True,
) -> SafeString:
    """A line chart of up to four date series on one date axis, with a data table.

    The points (thinned to ``max_points``, the last kept) ride in ``data-chart`` as JSON for the
    crosshair and tooltip of ``charts.js``; without the script the chart and its table stand alone."""
    series = [Series(s.label, _thin(s.points, max_points)) for s in series if len(s.points) >= 1][:4]
    uid = next(_ids)
    if not series:
        return _empty()
    left, right, top, bottom = 56, 14, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    all_dates = sorted({d for s in series for d, _v in s.points})
    values = [float(v) for s in series for _d, v in s.points]
    ticks = nice_ticks(min(values), max(values))
    lo, hi = ticks[0], ticks[-1]
    d0, d1 = all_dates[0].toordinal(), all_dates[-1].toordinal()
    span_days = max(d1 - d0, 1)

    def x(d: date) -> float:
        return left + (d.toordinal() - d0) / span_days * plot_w if d1 != d0 else left + plot_w / 2

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    data = {
        "unit": "%" if percent else currency,
        "percent": percent,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": top + plot_h,
        "series": [
            {
                "label": s.label,
                "points": [[d.isoformat(), round(x(d), 1), round(y(float(v)), 1), float(v)] for d, v in s.points],
            }
            for s in series
        ],
    }
    parts = [
        '<figure class="chart-figure" data-chart-kind="line">',
        _svg_open(
            uid, width, height, title, description, f' data-chart="{escape(json.dumps(data, separators=(",", ":")))}"'
        ),
    ]
    _y_axis(parts, ticks, y, left=left, right_x=width - right, percent=percent, currency=currency)
    parts.append(f'<line class="axis-line" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    for d, label in date_ticks(all_dates[0], all_dates[-1], max_ticks=max(2, plot_w // 90)):
        tx = x(d)
        anchor = "start" if tx - left < 20 else "end" if width - right - tx < 20 else "middle"
        parts.append(
            f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}"/>'
            f'<text class="axis-label" x="{tx:.1f}" y="{height - 8}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    for index, s in enumerate(series, start=1):
        pts = " ".join(f"{x(d):.1f},{y(float(v)):.1f}" for d, v in s.points)
        if index == 1 and area and len(s.points) > 1:
            base = y(max(lo, 0.0) if lo >= 0 else lo)
            first_x, last_x = x(s.points[0][0]), x(s.points[-1][0])
            parts.append(f'<polygon class="area-1" points="{first_x:.1f},{base:.1f} {pts} {last_x:.1f},{base:.1f}"/>')
        parts.append(f'<polyline class="series-{index}" points="{pts}"/>')
    parts.append("</svg>")
    if len(series) > 1:
        parts.append(
            '<ul class="legend">'
            + "".join(f'<li><span class="key key-{i}"></span>{escape(s.label)}</li>' for i, s in enumerate(series, 1))
            + "</ul>"
        )
    by_date: dict[date, list[str]] = {d: ["—"] * len(series) for d in all_dates}
    for i, s in enumerate(series):
        for d, v in s.points:
            by_date[d][i] = _figure(float(v), percent=percent, currency=currency)
    table_dates = [d for d, _v in _thin([(d, 0) for d in all_dates], 24)]
    parts.append(
        ""
        if not table
        else _table(
            title,
            ["Date", *[s.label for s in series]],
            [[f"{d.day} {d:%b %Y}", *by_date[d]] for d in table_dates],
        )
    )
    parts.append("</figure>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def _wrap(label: str, width: int, lines: int = 3) -> list[str]:
    """``label`` on at most ``lines`` lines of about ``width`` characters, broken at spaces; a word
    longer than a line is split with a hyphen. Nothing is dropped."""
    words = label.split()
    out: list[str] = []
    line = ""
    for word in words:
        while len(word) > width:
            if line:
                out.append(line)
                line = ""
            out.append(word[: width - 1] + "-")
            word = word[width - 1 :]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            out.append(line)
            line = word
    if line:
        out.append(line)
    if len(out) > lines:  # keep every word: the last line takes the rest
        out = [*out[: lines - 1], " ".join(out[lines - 1 :])]
    return out or [""]


def hbar_chart(
    bars: Sequence[tuple[str, Number]],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    percent: bool = False,
    currency: str = "",
    table: bool = True,
) -> SafeString:
    """Categories as horizontal bars, largest first as given; the full label on the left (wrapped,
    never cut) and the value at the end of each bar. Negative values grow left of a zero line."""
    uid = next(_ids)
    if not bars:
        return _empty()
    label_w = min(220, max(90, int(width * 0.34)))
    chars = max(8, (label_w - 10) // 7)
    wrapped = [_wrap(str(label), chars) for label, _v in bars]
    value_w = 78
    left, right, top = label_w, value_w, 6
    plot_w = width - left - right
    rows_h = [max(26, 14 * len(lines) + 10) for lines in wrapped]
    height = top + sum(rows_h) + 6
    values = [float(v) for _l, v in bars]
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = ['<figure class="chart-figure" data-chart-kind="hbar">', _svg_open(uid, width, height, title, description)]
    zero = x(0.0)
    y0 = top
    for (label, value), lines, row_h in zip(bars, wrapped, rows_h, strict=True):
        v = float(value)
        bar_h = 16
        by = y0 + (row_h - bar_h) / 2
        bx, bw = (zero, x(v) - zero) if v >= 0 else (x(v), zero - x(v))
        cls = "bar-pos" if v >= 0 else "bar-neg"
        text = f"{v:,.1f} %" if percent else _figure(v, percent=False, currency=currency, exact=False)
        first_line = y0 + row_h / 2 - (len(lines) - 1) * 7 + 4
        parts.append(
            f'<text class="axis-label cat-label" x="{left - 8}" y="{first_line:.1f}" text-anchor="end">'
            + "".join(
                f'<tspan x="{left - 8}" dy="{0 if i == 0 else 14}">{escape(line)}</tspan>'
                for i, line in enumerate(lines)
            )
            + "</text>"
            f'<rect class="{cls}" x="{bx:.1f}" y="{by:.1f}" width="{max(bw, 0.5):.1f}" height="{bar_h}">'
            f"<title>{escape(str(label))}: {escape(text)}</title></rect>"
            + (
                f'<text class="value-label" x="{bx + bw + 6:.1f}" y="{by + 12:.1f}">{escape(text)}</text>'
                if v >= 0
                else f'<text class="value-label" x="{bx - 6:.1f}" y="{by + 12:.1f}" '
                f'text-anchor="end">{escape(text)}</text>'
            )
        )
        y0 += row_h
    parts.append(f'<line class="axis-line" x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{height - 6}"/>')
    parts.append("</svg>")
    parts.append(
        ""
        if not table
        else _table(
            title,
            ["Category", "Value"],
            [
                [str(label), f"{float(v):,.2f} %" if percent else _figure(float(v), percent=False, currency=currency)]
                for label, v in bars
            ],
        )
    )
    parts.append("</figure>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def _x_labels(
    parts: list[str], labels: Sequence[str], centres: Sequence[float], *, slot: float, baseline: float
) -> None:
    """Labels under vertical bars: level when they fit, rotated 40° when they would collide."""
    widest = max((len(label) for label in labels), default=0) * 7
    if widest <= slot - 4:
        for label, cx in zip(labels, centres, strict=True):
            parts.append(
                f'<text class="axis-label" x="{cx:.1f}" y="{baseline + 16:.1f}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
        return
    step = max(1, math.ceil(16 / max(slot, 1)))  # rotated labels need about 16 px each
    for i, (label, cx) in enumerate(zip(labels, centres, strict=True)):
        if i % step:
            continue
        parts.append(
            f'<text class="axis-label" x="{cx:.1f}" y="{baseline + 12:.1f}" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {baseline + 12:.1f})">{escape(label)}</text>'
        )


def bar_chart(
    bars: Sequence[tuple[str, Number]],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    height: int = 220,
    percent: bool = False,
    currency: str = "",
    table: bool = True,
) -> SafeString:
    """Vertical bars around zero (positive and negative coloured apart) over ordered labels, e.g.
    monthly returns; labels rotate instead of colliding. For categories use ``hbar_chart``."""
    return stacked_bar_chart(
        [label for label, _v in bars],
        [("", [v for _l, v in bars])],
        title=title,
        description=description,
        width=width,
        height=height,
        percent=percent,
        currency=currency,
        table=table,
    )


def stacked_bar_chart(
    labels: Sequence[str],
    stacks: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    height: int = 240,
    percent: bool = False,
    currency: str = "",
    table: bool = True,
) -> SafeString:
    """One bar per label, each series (``(name, values)``) stacked in its colour; one unnamed
    series gives plain bars coloured by sign. Non-negative values when stacking several series."""
    uid = next(_ids)
    if not labels or not stacks:
        return _empty()
    single = len(stacks) == 1 and not stacks[0][0]
    widest = max(len(label) for label in labels) * 7
    left, right, top = 56, 14, 10
    slot = (width - left - right) / len(labels)
    bottom = 28 if widest <= slot - 4 else min(90, int(widest * 0.65) + 20)
    plot_h = height - top - bottom
    totals = [sum(float(s[1][i]) for s in stacks) for i in range(len(labels))]
    lows = [min(0.0, *(float(s[1][i]) for s in stacks)) for i in range(len(labels))]
    ticks = nice_ticks(min(0.0, *lows), max(0.0, *totals))
    lo, hi = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    bar_w = max(slot * 0.7, 1)
    parts = ['<figure class="chart-figure" data-chart-kind="bar">', _svg_open(uid, width, height, title, description)]
    _y_axis(parts, ticks, y, left=left, right_x=width - right, percent=percent, currency=currency)
    zero = y(0.0)
    centres = []
    for i, label in enumerate(labels):
        bx = left + i * slot + (slot - bar_w) / 2
        centres.append(bx + bar_w / 2)
        level = 0.0
        for k, (name, values) in enumerate(stacks, start=1):
            v = float(values[i])
            if single:
                top_y, h = (y(v), zero - y(v)) if v >= 0 else (zero, y(v) - zero)
                cls = "bar-pos" if v >= 0 else "bar-neg"
            else:
                top_y, h = y(level + v), y(level) - y(level + v)
                cls = f"stack-{(k - 1) % 6 + 1}"
                level += v
            text = f"{label}: {name + ' ' if name else ''}{_figure(v, percent=percent, currency=currency)}"
            parts.append(
                f'<rect class="{cls}" x="{bx:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}">'
                f"<title>{escape(text)}</title></rect>"
            )
    parts.append(f'<line class="axis-line" x1="{left}" x2="{width - right}" y1="{zero:.1f}" y2="{zero:.1f}"/>')
    _x_labels(parts, labels, centres, slot=slot, baseline=top + plot_h)
    parts.append("</svg>")
    if not single:
        parts.append(
            '<ul class="legend">'
            + "".join(
                f'<li><span class="key stack-key-{(k - 1) % 6 + 1}"></span>{escape(name)}</li>'
                for k, (name, _v) in enumerate(stacks, 1)
            )
            + "</ul>"
        )
    head = ["", *(name or "Value" for name, _v in stacks)]
    rows = [
        [label, *(_figure(float(values[i]), percent=percent, currency=currency) for _n, values in stacks)]
        for i, label in enumerate(labels)
    ]
    if table:
        parts.append(_table(title, head, rows))
    parts.append("</figure>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def sparkline(points: Sequence[tuple[date, Number]], *, label: str, width: int = 120, height: int = 32) -> SafeString:
    """A tiny line (no axes) for a figure in a card; ``label`` names it for screen readers."""
    if len(points) < 2:
        return mark_safe("")
    values = [float(v) for _d, v in points]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    d0, d1 = points[0][0].toordinal(), points[-1][0].toordinal()
    days = max(d1 - d0, 1)
    pts = " ".join(
        f"{(d.toordinal() - d0) / days * (width - 2) + 1:.1f},{(hi - float(v)) / span * (height - 4) + 2:.1f}"
        for d, v in points
    )
    trend = "up" if values[-1] >= values[0] else "down"
    return format_html(
        '<svg class="sparkline spark-{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        '<polyline points="{}"/></svg>',
        trend,
        width,
        height,
        width,
        height,
        label,
        pts,
    )
