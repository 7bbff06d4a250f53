"""Invoice PDFs, drawn with reportlab as a real invoice: who bills whom, the invoice number, its dates and period,
line items in aligned columns, subtotal and total.

Every piece of text sits in a Paragraph inside a fixed-width cell, so a long value wraps within its column
instead of running into the next one (tests/billing/test_pdf_layout.py renders it and checks that no two
pieces of text overlap).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO
from xml.sax.saxutils import escape

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.models import Invoice, InvoiceLine
from billing.money import format_cents
from billing.periods import format_month

MARGIN = 18 * mm
# The width of the page's frame: A4 less the margins and the frame's own padding (6 points each side).
PAGE_WIDTH = A4[0] - 2 * MARGIN - 12
# Quantity, unit, unit price, amount; the description takes the rest of the width.
NUMBER_COLUMNS = [28 * mm, 22 * mm, 40 * mm, 28 * mm]
COLUMNS = [PAGE_WIDTH - sum(NUMBER_COLUMNS), *NUMBER_COLUMNS]
GUTTER = 8 * mm
GREY = colors.HexColor("#6b7280")
STRIPE = colors.HexColor("#f3f4f6")
NOTE = (
    "Function requests are priced per million, function duration per GB-second, and compute instances per "
    "hour of time in <i>active</i>, billed per started second. Amounts are rounded to the cent once per line; "
    "the total is the sum of the lines."
)


def _style(name: str, size: float = 9, *, bold: bool = False, right: bool = False, color=colors.black, **extra):
    return ParagraphStyle(
        name,
        fontName="Helvetica-Bold" if bold else "Helvetica",
        fontSize=size,
        leading=size * 1.25,
        alignment=TA_RIGHT if right else TA_LEFT,
        textColor=color,
        **extra,
    )


TEXT = _style("text")
NUMBER = _style("number", right=True)
HEAD = _style("head", 8, bold=True, color=GREY)
HEAD_RIGHT = _style("head-right", 8, bold=True, right=True, color=GREY)
STRONG = _style("strong", 10, bold=True)
STRONG_RIGHT = _style("strong-right", 10, bold=True, right=True)
ISSUER = _style("issuer", 16, bold=True)
TITLE = _style("title", 20, bold=True, right=True)
SMALL = _style("small", 8, color=GREY)


@dataclass(frozen=True)
class Party:
    """Who bills, or who is billed: a name and the lines under it (address, email)."""

    name: str
    lines: tuple[str, ...]


def issuer() -> Party:
    """The issuer, from settings (ELBIA_INVOICE_ISSUER, ELBIA_INVOICE_ISSUER_ADDRESS, ELBIA_INVOICE_ISSUER_EMAIL)."""
    address = tuple(line.strip() for line in settings.ELBIA_INVOICE_ISSUER_ADDRESS.split("|") if line.strip())
    email = (settings.ELBIA_INVOICE_ISSUER_EMAIL,) if settings.ELBIA_INVOICE_ISSUER_EMAIL else ()
    return Party(settings.ELBIA_INVOICE_ISSUER, address + email)


def due_date(invoice: Invoice) -> date:
    """When payment is due: ELBIA_INVOICE_DUE_DAYS after the invoice date."""
    return invoice.date + timedelta(days=settings.ELBIA_INVOICE_DUE_DAYS)


def render_invoice_pdf(*, invoice: Invoice, lines: list[InvoiceLine], bill_to_email: str = "") -> bytes:
    """The invoice as a PDF document (bytes), billed to its account (name, and ``bill_to_email`` when known)."""
    seller = issuer()
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Invoice {invoice.public_id}",
        author=seller.name,
        subject=f"{seller.name} invoice for {format_month(invoice.period)}",
        invariant=True,  # the same invoice renders to the same bytes
    )
    bill_to = Party(invoice.account.name, (bill_to_email,) if bill_to_email else ())
    story = [
        _header(seller, invoice),
        Spacer(1, 10 * mm),
        _parties_and_facts(bill_to, invoice),
        Spacer(1, 10 * mm),
        _items(lines),
        Spacer(1, 2 * mm),
        _totals(invoice),
        Spacer(1, 10 * mm),
        Paragraph(f"Payment due by {due_date(invoice):%d %B %Y}. {NOTE}", SMALL),
    ]
    document.build(story)
    return buffer.getvalue()


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """A Paragraph of plain text (escaped: account names are user input)."""
    return Paragraph(escape(text.replace("\x00", "")), style)


def _header(seller: Party, invoice: Invoice) -> Table:
    left = [_p(seller.name, ISSUER), Spacer(1, 2 * mm), *(_p(line, TEXT) for line in seller.lines)]
    right = [_p("INVOICE", TITLE), Spacer(1, 2 * mm), _p(invoice.get_status_display().upper(), STRONG_RIGHT)]
    return _plain_table([[left, right]], [PAGE_WIDTH * 0.65, PAGE_WIDTH * 0.35])


def _parties_and_facts(bill_to: Party, invoice: Invoice) -> Table:
    who = [
        _p("BILL TO", HEAD),
        Spacer(1, 1 * mm),
        _p(bill_to.name, STRONG),
        *(_p(line, TEXT) for line in bill_to.lines),
    ]
    facts = [
        ("Invoice number", invoice.public_id),
        ("Issue date", invoice.date.isoformat()),
        ("Due date", due_date(invoice).isoformat()),
        ("Period", f"{invoice.period.isoformat()} to {invoice.date.isoformat()} (UTC)"),
        ("Currency", invoice.currency),
    ]
    facts_table = _plain_table(
        [[_p(label, HEAD), _p(value, NUMBER)] for label, value in facts],
        [28 * mm, PAGE_WIDTH * 0.5 - GUTTER - 28 * mm],
        padding=1.5,
    )
    parties = _plain_table([[who, facts_table]], [PAGE_WIDTH * 0.5, PAGE_WIDTH * 0.5])
    parties.setStyle(TableStyle([("ALIGN", (1, 0), (1, 0), "RIGHT")]))  # the facts flush with the right margin
    return parties


def _items(lines: list[InvoiceLine]) -> Table:
    header = ["Description", "Quantity", "Unit", "Unit price", "Amount"]
    rows = [
        [_p(header[0], HEAD), _p(header[1], HEAD_RIGHT), _p(header[2], HEAD), *(_p(t, HEAD_RIGHT) for t in header[3:])]
    ]
    for line in lines:
        rows.append(
            [
                _p(line.description, TEXT),
                _p(_number(line.quantity), NUMBER),
                _p(line.unit, TEXT),
                _p(f"${_number(line.unit_price)} / {line.price_unit}", NUMBER),
                _p(format_cents(line.amount_cents), NUMBER),
            ]
        )
    if not lines:
        rows.append([_p("No usage this period.", TEXT), "", "", "", _p(format_cents(0), NUMBER)])
    table = Table(rows, colWidths=COLUMNS, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, STRIPE]),
            ]
        )
    )
    return table


def _totals(invoice: Invoice) -> Table:
    amount = format_cents(invoice.amount_cents)
    label_width = COLUMNS[2] + COLUMNS[3]
    rows = [
        [_p("Subtotal", NUMBER), _p(amount, NUMBER)],
        [_p(f"Total ({invoice.currency})", STRONG_RIGHT), _p(amount, STRONG_RIGHT)],
    ]
    totals = Table(rows, colWidths=[label_width, COLUMNS[4]])
    totals.setStyle(
        TableStyle([("LINEABOVE", (0, 1), (-1, 1), 0.75, colors.black), ("TOPPADDING", (0, 1), (-1, 1), 5)])
    )
    totals.hAlign = "RIGHT"
    return totals


def _plain_table(rows, widths, padding: float = 0) -> Table:
    table = Table(rows, colWidths=widths)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), padding),
                ("BOTTOMPADDING", (0, 0), (-1, -1), padding),
            ]
        )
    )
    return table


def _number(value) -> str:
    """A Decimal without trailing zeros or exponent, with thousands separators: ``524378`` -> ``524,378``."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")
