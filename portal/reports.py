"""The quarterly performance report: figures from the staff API's selectors, drawn as a PDF by fpdf2.

fpdf2 (pure Python, on PyPI, no system libraries) draws the text, tables and the value chart (a
polyline of the stored daily values) itself: no SVG or HTML renderer in between (decision 0961).
``report_data`` gathers the figures (the same selectors as ``/api/v1/portfolios/{id}/performance/``
and ``/holdings/``); ``report_pdf`` only draws them, so a test compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from fpdf import FPDF

from codex import charts, formatting
from crm.models import Contact
from portfolios import analytics
from portfolios import selectors as portfolio_selectors
from portfolios.models import Portfolio

from . import access

PERIODS = ("QTD", "YTD", "1Y", "SI")


def quarter_start(quarter_end: date) -> date:
    return date(quarter_end.year, 3 * ((quarter_end.month - 1) // 3) + 1, 1)


def last_quarter_end(today: date) -> date:
    return quarter_start(today) - timedelta(days=1)


@dataclass
class PeriodFigures:
    period: str
    start: date
    end: date
    twr: Decimal | None
    mwr: Decimal | None
    benchmark: Decimal | None


@dataclass
class PortfolioReport:
    portfolio: Portfolio
    value: Decimal
    currency: str
    periods: list[PeriodFigures]
    allocation: dict[str, Decimal]
    holdings: list[tuple[str, Decimal, Decimal]]  # symbol, quantity, market value (base)
    transactions: list[tuple[date, str, str, Decimal | None]]
    fees: Decimal
    income: Decimal
    series: list[tuple[date, Decimal]] = field(default_factory=list)


@dataclass
class ClientReport:
    contact: Contact
    firm_name: str
    brand_color: str
    quarter_end: date
    disclosures: str
    portfolios: list[PortfolioReport]


def _value(r: analytics.PeriodReturn | None) -> Decimal | None:
    return None if r is None else r.value


def portfolio_report(portfolio: Portfolio, quarter_end: date) -> PortfolioReport | None:
    """The figures of one portfolio as of ``quarter_end``; None when it had no transaction by then."""
    try:
        qtd = portfolio_selectors.portfolio_performance(
            portfolio=portfolio, start=quarter_start(quarter_end), end=quarter_end, today=quarter_end
        )
    except portfolio_selectors.NoTransactionsYet:
        return None
    inception = qtd.valuation.inception
    if inception is None or inception > quarter_end:
        return None
    periods = []
    for name in PERIODS:
        start, end = analytics.preset_range(name, quarter_end, inception)
        perf = portfolio_selectors.portfolio_performance(portfolio=portfolio, start=start, end=end, today=quarter_end)
        p = perf.performance
        periods.append(PeriodFigures(name, start, end, _value(p.twr), _value(p.mwr), _value(p.benchmark)))
    snap, infos = portfolio_selectors.portfolio_holdings(portfolio=portfolio, on=quarter_end)
    holdings = [
        (infos[h.instrument_id].symbol if h.instrument_id in infos else "?", h.quantity, h.market_value_base)
        for h in sorted(snap.holdings, key=lambda h: -h.market_value_base)
    ]
    txns = [
        (t.trade_date, t.kind, t.instrument.symbol if t.instrument is not None else "", t.amount)
        for t in portfolio_selectors.transactions_of(portfolio=portfolio)
        .filter(trade_date__gte=quarter_start(quarter_end), trade_date__lte=quarter_end)
        .order_by("trade_date", "id")
    ]
    summary = qtd.performance.summary
    series = qtd.performance.series
    return PortfolioReport(
        portfolio=portfolio,
        value=snap.total_value,
        currency=portfolio.base_currency,
        periods=periods,
        allocation=portfolio_selectors.portfolio_allocation(portfolio=portfolio, on=quarter_end),
        holdings=holdings,
        transactions=txns,
        fees=summary.fees,
        income=summary.dividends + summary.interest,
        series=list(zip(series.dates, series.values, strict=True)),
    )


def report_data(*, contact: Contact, quarter_end: date, firm_name: str, brand_color: str, disclosures: str):
    parts = [r for p in access.contact_portfolios(contact) if (r := portfolio_report(p, quarter_end)) is not None]
    return ClientReport(contact, firm_name, brand_color or "#1d4ed8", quarter_end, disclosures, parts)


# --- drawing ------------------------------------------------------------------------------------------------
# Figures through the one formatting layer (codex.formatting), made safe for the Latin-1 core font.
def money(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else formatting.latin1(formatting.money(value, currency))


def percent(value: Decimal | None) -> str:
    """A return (a fraction), signed: "+6.48 %"."""
    return "-" if value is None else formatting.latin1(formatting.performance(value))


def weight(value: Decimal | None) -> str:
    return "-" if value is None else formatting.latin1(formatting.ratio(value, places=2))


def day(value: date) -> str:
    return formatting.latin1(formatting.date(value))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    try:
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    except (ValueError, IndexError):
        return 29, 78, 216


def _latin(text: str) -> str:
    # The core fonts are Latin-1: typography mapped, anything else replaced rather than failing.
    return formatting.latin1(text)


def _table(pdf: FPDF, head: list[str], rows: list[list[str]], widths: list[int]) -> None:
    pdf.set_font("Helvetica", "B", 9)
    for text, w in zip(head, widths, strict=True):
        pdf.cell(w, 6, _latin(text), border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for row in rows:
        for i, (text, w) in enumerate(zip(row, widths, strict=True)):
            pdf.cell(w, 5, _latin(text), align="R" if i else "L")
        pdf.ln()
    pdf.ln(3)


def _chart(pdf: FPDF, series: list[tuple[date, Decimal]], color: tuple[int, int, int]) -> None:
    """The value line with the product's chart axes (codex.charts): value ticks on the left, one
    date axis below (months or years from the span), each date named once."""
    if len(series) < 2:
        return
    label_w = 14
    x0, y0, w, h = pdf.l_margin + label_w, pdf.get_y(), pdf.epw - label_w, 40
    values = [float(v) for _, v in series]
    ticks = charts.nice_ticks(min(values), max(values))
    lo, hi = ticks[0], ticks[-1]
    d0, d1 = series[0][0].toordinal(), series[-1][0].toordinal()
    span = max(d1 - d0, 1)

    def x(d: date) -> float:
        return x0 + w * (d.toordinal() - d0) / span

    def y(v: float) -> float:
        return y0 + h - (v - lo) / (hi - lo) * h

    pdf.set_font("Helvetica", "", 7)
    pdf.set_text_color(90, 90, 90)
    pdf.set_draw_color(225, 225, 225)
    for t in ticks:
        pdf.line(x0, y(t), x0 + w, y(t))
        pdf.set_xy(pdf.l_margin, y(t) - 2)
        pdf.cell(label_w - 1, 4, charts.compact(t), align="R")
    for d, label in charts.date_ticks(series[0][0], series[-1][0], max_ticks=6):
        pdf.line(x(d), y0 + h, x(d), y0 + h + 1)
        pdf.set_xy(x(d) - 10, y0 + h + 1)
        pdf.cell(20, 4, _latin(label), align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(*color)
    pdf.set_line_width(0.5)
    pdf.polyline([(x(d), y(float(v))) for d, v in series])
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 10)
    pdf.set_y(y0 + h + 8)


def report_pdf(report: ClientReport, *, compress: bool = True) -> bytes:
    """The report's bytes; figures in the firm's default style, whoever triggers the rendering."""
    with formatting.display_preferences(formatting.DisplayPreferences()):
        return _report_pdf(report, compress=compress)


def _report_pdf(report: ClientReport, *, compress: bool) -> bytes:
    color = _rgb(report.brand_color)
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(f"Quarterly report {report.quarter_end.isoformat()}")
    pdf.set_author(_latin(report.firm_name))
    # cover
    pdf.add_page()
    pdf.set_fill_color(*color)
    pdf.rect(0, 0, 210, 30, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("Helvetica", "B", 18)
    pdf.set_xy(15, 10)
    pdf.cell(0, 10, _latin(report.firm_name))
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(15, 60)
    pdf.set_font("Helvetica", "B", 22)
    pdf.cell(0, 12, "Quarterly performance report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 14)
    pdf.cell(
        0, 10, _latin(f"{report.contact.first_name} {report.contact.last_name}".strip()), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.cell(0, 10, f"Quarter ending {day(report.quarter_end)}", new_x="LMARGIN", new_y="NEXT")
    # summary
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, "Summary", new_x="LMARGIN", new_y="NEXT")
    _table(
        pdf,
        ["Portfolio", "Value", "QTD TWR", "YTD TWR", "Fees (QTD)"],
        [
            [
                p.portfolio.name,
                money(p.value, p.currency),
                percent(p.periods[0].twr),
                percent(p.periods[1].twr),
                money(p.fees, p.currency),
            ]
            for p in report.portfolios
        ],
        [60, 40, 28, 28, 30],
    )
    for p in report.portfolios:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 10, _latin(p.portfolio.name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(
            0,
            6,
            f"Value {money(p.value, p.currency)} - income {money(p.income, p.currency)} in the quarter",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        _chart(pdf, p.series, color)
        _table(
            pdf,
            ["Period", "From", "TWR", "Money-weighted", "Benchmark"],
            [[f.period, day(f.start), percent(f.twr), percent(f.mwr), percent(f.benchmark)] for f in p.periods],
            [25, 30, 35, 45, 45],
        )
        _table(
            pdf,
            ["Asset class", "Weight"],
            [[charts.category_label(k), weight(v)] for k, v in p.allocation.items()],
            [90, 40],
        )
        _table(
            pdf,
            ["Holding", "Quantity", "Value"],
            [[s, formatting.latin1(formatting.quantity(q)), money(v, p.currency)] for s, q, v in p.holdings],
            [60, 50, 60],
        )
        _table(
            pdf,
            ["Date", "Kind", "Instrument", "Amount"],
            [[day(d), k, s, money(a, p.currency) if a is not None else "-"] for d, k, s, a in p.transactions],
            [35, 35, 50, 50],
        )
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, "Disclosures", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, _latin(report.disclosures or "Past performance is no guarantee of future results."))
    return bytes(pdf.output())
