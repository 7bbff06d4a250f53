"""Invoice PDFs, drawn with reportlab: account, period, invoice id, line items and the total."""

from io import BytesIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import KeepTogether

from billing.models import Invoice, InvoiceLine
from billing.money import format_cents
from billing.periods import format_month

SELLER = "Elbia Lambda"


def render_invoice_pdf(*, invoice: Invoice, lines: list[InvoiceLine]) -> bytes:
    """The invoice as a PDF document (bytes)."""
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Invoice {invoice.public_id}",
        author=SELLER,
        subject=f"{SELLER} invoice for {format_month(invoice.period)}",
        invariant=True,  # the same invoice renders to the same bytes
    )
    styles = getSampleStyleSheet()
    status = invoice.get_status_display().upper()
    header = Table(
        [
            [
                Paragraph(f"<b>{SELLER}</b>", styles["Title"]),
                Paragraph(f"<b>INVOICE</b> ({status})", styles["Heading2"]),
            ],
        ],
        colWidths=[100 * mm, 74 * mm],
    )
    facts = Table(
        [
            ["Invoice", invoice.public_id],
            ["Account", _plain(invoice.account.name)],
            ["Period", f"{format_month(invoice.period)} ({invoice.period:%d %b %Y} to {invoice.date:%d %b %Y}, UTC)"],
            ["Invoice date", invoice.date.isoformat()],
            ["Currency", invoice.currency],
        ],
        colWidths=[35 * mm, 139 * mm],
        style=TableStyle([("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 10)]),
    )
    rows = [["Description", "Quantity", "Unit price", "Amount"]]
    for line in lines:
        rows.append(
            [
                line.description,
                f"{_number(line.quantity)} {line.unit}",
                f"${_number(line.unit_price)} / {line.price_unit}",
                format_cents(line.amount_cents),
            ]
        )
    rows.append(["", "", "Total", format_cents(invoice.amount_cents)])
    items = Table(rows, colWidths=[62 * mm, 42 * mm, 42 * mm, 28 * mm], repeatRows=1)
    items.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f4f6")]),
            ]
        )
    )
    note = Paragraph(
        "Function requests are priced per million, function duration per GB-second, and compute "
        "instances per hour of time in <i>active</i>, billed per started second. Amounts are rounded "
        "to the cent once per line; the total is the sum of the lines.",
        styles["Italic"],
    )
    document.build([header, Spacer(1, 6 * mm), facts, Spacer(1, 8 * mm), KeepTogether(items), Spacer(1, 8 * mm), note])
    return buffer.getvalue()


def _number(value) -> str:
    """A Decimal without trailing zeros or exponent, with thousands separators: ``524378`` -> ``524,378``."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")


def _plain(text: str) -> str:
    return text.replace("\x00", "")
