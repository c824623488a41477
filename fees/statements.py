"""The fee statement of one invoice as a PDF (fpdf2: pure Python, installed from PyPI, no system
library; docs/decisions/0950), branded with the firm's name and colour, stored through Django's
``STORAGES`` (local under .data/ in development, S3-compatible in production) for the portal."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.db import transaction
from fpdf import FPDF

from codex import formatting

from .models import FeeInvoice, FeeStatement

DEFAULT_COLOUR = "#1f3a5f"


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = (colour or DEFAULT_COLOUR).lstrip("#")
    if len(colour) != 6:
        colour = DEFAULT_COLOUR.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _text(value: object) -> str:
    # The core PDF fonts are Latin-1 (codex.formatting.latin1: typography mapped, never an error).
    return formatting.latin1(value)


def statement_pdf(*, invoice: FeeInvoice, firm_name: str, brand_colour: str = "", lines=None) -> bytes:
    """The statement's bytes: firm header in its colour, client, period, one row per line, total.
    ``lines``: the invoice's lines when the caller has them (otherwise read). Figures are written
    by the formatting layer in the firm's default style, whoever triggers the rendering."""
    with formatting.display_preferences(formatting.DisplayPreferences()):
        return _statement_pdf(invoice=invoice, firm_name=firm_name, brand_colour=brand_colour, lines=lines)


def _statement_pdf(*, invoice: FeeInvoice, firm_name: str, brand_colour: str, lines) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_text(f"Fee statement {invoice.number}"))
    pdf.set_creator("Codex")
    pdf.add_page()
    r, g, b = _rgb(brand_colour)
    pdf.set_fill_color(r, g, b)
    pdf.rect(0, 0, 210, 24, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("Helvetica", "B", 16)
    pdf.set_xy(12, 7)
    pdf.cell(0, 10, _text(firm_name))
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(12, 32)
    pdf.set_font("Helvetica", "B", 13)
    title = "Credit note" if invoice.kind == "credit_note" else "Advisory fee statement"
    pdf.cell(0, 8, _text(f"{title} {invoice.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (
        ("Client", invoice.client),
        ("Period", f"{formatting.date(invoice.period_start)} to {formatting.date(invoice.period_end)}"),
        ("Issued", formatting.date(invoice.issued_on)),
        ("Collection", invoice.get_collection_display()),
    ):
        pdf.cell(30, 6, _text(label))
        pdf.cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 9)
    widths = (86, 34, 14, 22, 30)
    for width, head in zip(widths, ("Description", "Billable value", "Days", "Rate (bps)", "Fee"), strict=True):
        pdf.cell(width, 7, head, border="B", align="L" if head == "Description" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for line in invoice.lines.all() if lines is None else lines:
        cells = (
            line.description[:60],
            formatting.money(line.billable_value, invoice.currency),
            formatting.count(line.days),
            formatting.number(line.rate_bps, places=2),
            formatting.money(line.amount, invoice.currency),
        )
        for width, value, align in zip(widths, cells, "LRRRR", strict=True):
            pdf.cell(width, 6, _text(value), align=align)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(sum(widths[:-1]), 8, "Total", border="T")
    pdf.cell(widths[-1], 8, _text(formatting.money(invoice.total, invoice.currency)), border="T", align="R")
    return bytes(pdf.output())


@transaction.atomic
def fee_statement_store(*, invoice: FeeInvoice, firm_name: str, brand_colour: str = "") -> FeeStatement:
    """Render and store (or replace) the invoice's statement. Idempotent per invoice."""
    content = statement_pdf(invoice=invoice, firm_name=firm_name, brand_colour=brand_colour)
    statement, _ = FeeStatement.objects.get_or_create(
        invoice=invoice,
        defaults={
            "client_id": invoice.client_id,
            "period_start": invoice.period_start,
            "period_end": invoice.period_end,
        },
    )
    if statement.file:
        statement.file.delete(save=False)
    statement.file.save(f"{invoice.number}.pdf", ContentFile(content), save=True)
    return statement


def fee_statements_store_new(
    *, issued: list[tuple[FeeInvoice, list]], firm_name: str, brand_colour: str = ""
) -> list[FeeStatement]:
    """Statements of invoices just issued (none exists yet): rendered from the lines in hand,
    files written through STORAGES, rows inserted in one statement."""
    statements = []
    for invoice, lines in issued:
        content = statement_pdf(invoice=invoice, firm_name=firm_name, brand_colour=brand_colour, lines=lines)
        statement = FeeStatement(
            invoice=invoice,
            client_id=invoice.client_id,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        )
        name = statement.file.field.generate_filename(statement, f"{invoice.number}.pdf")
        statement.file.name = statement.file.storage.save(name, ContentFile(content))
        statements.append(statement)
    return FeeStatement.objects.bulk_create(statements)
