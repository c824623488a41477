"""Server-side SVG charts for the web UI: small, themeable, accessible, no JavaScript.

Hand-made rather than pygal (see docs/decisions/0401): pygal's SVG carries inline ``<style>`` and
``style=`` attributes that the page's Content-Security-Policy (``style-src 'self'``) blocks when the
SVG is inlined, and its colours would not follow the light/dark theme. Here every colour is a CSS
class from codex.css, and each chart has a <title>/<desc> and is paired with a data table.

Pure functions of their inputs (no ORM), returning safe markup. The SVG scales to its container, so
pick ``width`` near the container's width in CSS pixels to keep the 12 px labels legible (the
dashboard's half-width cards use 480; full-width page charts the default 640).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import count

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal
_ids = count(1)


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


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
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


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, Number]]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    height: int = 220,
    percent: bool = False,
    area: bool = True,
) -> SafeString:
    """A line chart of one or more date series (the first may be filled as an area)."""
    series = [s for s in series if len(s.points) >= 1]
    uid = next(_ids)
    if not series:
        return format_html('<p class="empty compact">{}</p>', "No data to chart yet.")
    left, right, top, bottom = 52, 12, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    all_dates = sorted({d for s in series for d, _v in s.points})
    values = [float(v) for s in series for _d, v in s.points]
    ticks = _nice_ticks(min(values), max(values))
    lo, hi = ticks[0], ticks[-1]
    d0, d1 = all_dates[0].toordinal(), all_dates[-1].toordinal()
    span_days = max(d1 - d0, 1)

    def x(d: date) -> float:
        return left + (d.toordinal() - d0) / span_days * plot_w if d1 != d0 else left + plot_w / 2

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart{uid}-t chart{uid}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="chart{uid}-t">{escape(title)}</title><desc id="chart{uid}-d">{escape(description)}</desc>',
    ]
    for t in ticks:
        label = f"{compact(t)}%" if percent else compact(t)
        parts.append(
            f'<line class="grid-line" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text class="axis-label" x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    first, last = all_dates[0], all_dates[-1]
    parts.append(
        f'<text class="axis-label" x="{left}" y="{height - 6}" text-anchor="start">{first:%d %b %Y}</text>'
        f'<text class="axis-label" x="{width - right}" y="{height - 6}" text-anchor="end">{last:%d %b %Y}</text>'
    )
    for index, s in enumerate(series[:2], start=1):
        pts = " ".join(f"{x(d):.1f},{y(float(v)):.1f}" for d, v in s.points)
        if index == 1 and area and len(s.points) > 1:
            base = y(max(lo, 0.0) if lo >= 0 else lo)
            first_x, last_x = x(s.points[0][0]), x(s.points[-1][0])
            parts.append(f'<polygon class="area-1" points="{first_x:.1f},{base:.1f} {pts} {last_x:.1f},{base:.1f}"/>')
        parts.append(f'<polyline class="series-{index}" points="{pts}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def bar_chart(
    bars: Sequence[tuple[str, Number]],
    *,
    title: str,
    description: str = "",
    width: int = 640,
    height: int = 200,
    percent: bool = False,
) -> SafeString:
    """Vertical bars around zero (positive and negative coloured apart), e.g. monthly returns."""
    uid = next(_ids)
    if not bars:
        return format_html('<p class="empty compact">{}</p>', "No data to chart yet.")
    left, right, top, bottom = 52, 12, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(v) for _l, v in bars]
    ticks = _nice_ticks(min(0.0, *values), max(0.0, *values))
    lo, hi = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    slot = plot_w / len(bars)
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart{uid}-t chart{uid}-d">',
        f'<title id="chart{uid}-t">{escape(title)}</title><desc id="chart{uid}-d">{escape(description)}</desc>',
    ]
    for t in ticks:
        label = f"{compact(t)}%" if percent else compact(t)
        parts.append(
            f'<line class="grid-line" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text class="axis-label" x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    zero = y(0.0)
    step = max(1, len(bars) // 6)
    for i, (label, value) in enumerate(bars):
        v = float(value)
        bx = left + i * slot + (slot - bar_w) / 2
        top_y, h = (y(v), zero - y(v)) if v >= 0 else (zero, y(v) - zero)
        cls = "bar-pos" if v >= 0 else "bar-neg"
        text = f"{label}: {compact(v, digits=2)}{'%' if percent else ''}"
        parts.append(
            f'<rect class="{cls}" x="{bx:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}">'
            f"<title>{escape(text)}</title></rect>"
        )
        if i % step == 0:
            parts.append(
                f'<text class="axis-label" x="{bx + bar_w / 2:.1f}" y="{height - 6}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
