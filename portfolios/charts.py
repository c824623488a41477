"""Server-side SVG charts for the portfolio pages: no JavaScript, no CDN, no inline styles.

The page's CSP forbids inline ``<style>`` (and pygal's SVG carries one), so the charts are drawn
here with presentation attributes only. Each chart has a ``<title>``/``<desc>`` and the page
also shows the same numbers in a table, so they are accessible without the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a16207", "#475569"]


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[date, Decimal]]]],
    *,
    title: str,
    width: int = 720,
    height: int = 260,
    as_percent_of_one: bool = True,
    max_points: int = 400,
) -> SafeString:
    """Lines over time (e.g. TWR index vs benchmark index, both starting at 1).

    Long series are thinned to ``max_points`` per line (every n-th point, keeping the last)."""
    pad_l, pad_r, pad_t, pad_b = 56, 12, 12, 28
    lines = [(name, pts) for name, pts in series if pts]
    if not lines:
        return mark_safe("")  # noqa: S308 - constant empty string
    all_days = [d for _, pts in lines for d, _ in pts]
    d0, d1 = min(all_days), max(all_days)
    span_days = max((d1 - d0).days, 1)
    values = [float(v) for _, pts in lines for _, v in pts]
    lo, hi = min(values), max(values)
    if hi == lo:
        hi, lo = hi + 0.01, lo - 0.01
    margin = (hi - lo) * 0.05
    lo, hi = lo - margin, hi + margin
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(d: date) -> float:
        return pad_l + plot_w * (d - d0).days / span_days

    def y(v: float) -> float:
        return pad_t + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-title" class="chart" width="100%">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        yy = y(v)
        label = _fmt_pct(v - 1) if as_percent_of_one else f"{v:,.0f}"
        parts.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#8884" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{pad_l - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="currentColor">'
            f"{escape(label)}</text>"
        )
    for d in (d0, d1):
        parts.append(
            f'<text x="{x(d):.1f}" y="{height - 8}" text-anchor="{"start" if d == d0 else "end"}" font-size="11" '
            f'fill="currentColor">{d.isoformat()}</text>'
        )
    for i, (name, pts) in enumerate(lines):
        step = max(1, len(pts) // max_points)
        thin = list(pts[::step])
        if thin[-1] != pts[-1]:
            thin.append(pts[-1])
        path = " ".join(f"{x(d):.1f},{y(float(v)):.1f}" for d, v in thin)
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if i else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{path}"/>')
        parts.append(
            f'<rect x="{pad_l + 8 + i * 160}" y="{pad_t + 2}" width="12" height="4" fill="{color}"/>'
            f'<text x="{pad_l + 24 + i * 160}" y="{pad_t + 8}" font-size="11" fill="currentColor">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def bar_chart(weights: dict[str, Decimal], *, title: str, width: int = 360) -> SafeString:
    """Horizontal bars of weights (fractions of 1), largest first."""
    items = list(weights.items())
    if not items:
        return mark_safe("")  # noqa: S308 - constant empty string
    row_h, label_w = 22, 120
    height = row_h * len(items) + 8
    top = max(abs(float(w)) for _, w in items) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart" width="100%">',
        f"<title>{escape(title)}</title>",
    ]
    bar_w = width - label_w - 60
    for i, (label, w) in enumerate(items):
        yy = 4 + i * row_h
        length = max(0.0, float(w)) / top * bar_w
        parts.append(
            f'<text x="{label_w - 6}" y="{yy + 14}" text-anchor="end" font-size="12" fill="currentColor">'
            f"{escape(str(label).replace('_', ' '))}</text>"
            f'<rect x="{label_w}" y="{yy + 3}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{yy + 14}" font-size="12" fill="currentColor">'
            f"{float(w) * 100:.1f}%</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
