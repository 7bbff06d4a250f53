"""The invoice PDF laid out as an invoice: rendered to PNG (test-artifacts/, to look at), its text boxes checked for
overlaps, its number columns for alignment, and what a reader looks for (who bills whom, number, dates, totals)."""

import re
from datetime import date
from decimal import Decimal
from io import BytesIO
from itertools import combinations

import pdfplumber
import pypdfium2
import pytest
from django.conf import settings

from billing.models import Invoice, InvoiceLine
from billing.pdf import render_invoice_pdf
from billing.services import invoice_generate_for_month, invoice_render_pdf
from elbia.accounts.models import Account
from tests.billing.march import MARCH

ARTIFACTS = settings.BASE_DIR / "test-artifacts"
AMOUNT = re.compile(r"^\$[\d,]+\.\d\d$")


def render_png(content: bytes, name: str) -> list:
    """Every page as a PNG in test-artifacts/ (150 dpi); the PIL images."""
    ARTIFACTS.mkdir(exist_ok=True)
    images = []
    document = pypdfium2.PdfDocument(content)
    try:
        for number, page in enumerate(document, start=1):
            image = page.render(scale=150 / 72).to_pil()
            image.save(ARTIFACTS / f"{name}-page-{number}.png")
            images.append(image)
    finally:
        document.close()
    return images


def text_boxes(content: bytes) -> list[list[dict]]:
    """Each page's words with their boxes, in drawing order (a string drawn over another stays a box of its own)."""
    with pdfplumber.open(BytesIO(content)) as document:
        return [page.extract_words(use_text_flow=True, x_tolerance=1) for page in document.pages]


def overlaps(a: dict, b: dict) -> bool:
    across = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
    down = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return across > 0.1 and down > 0.1


def assert_no_overlapping_text(pages: list[list[dict]]) -> None:
    for number, words in enumerate(pages, start=1):
        clashes = [(a["text"], b["text"]) for a, b in combinations(words, 2) if overlaps(a, b)]
        assert clashes == [], f"page {number}: text drawn over other text: {clashes[:5]}"
        width = pypdfium2_width = 595.28  # A4 in points
        assert all(word["x0"] > 0 and word["x1"] < pypdfium2_width for word in words), width


def column_right_edges(words: list[dict], header: str, pattern: re.Pattern) -> set[float]:
    """The right edges of the header ``header`` and of the words matching ``pattern`` right below it."""
    title = next(word for word in words if word["text"] == header)
    below = [w for w in words if w["top"] > title["bottom"] and pattern.match(w["text"]) and w["x0"] < title["x1"]]
    below = [w for w in below if w["x1"] > title["x0"] - 5]
    return {round(title["x1"], 1), *(round(word["x1"], 1) for word in below)}


def line_text(words: list[dict]) -> str:
    """The page's text row by row: words whose middles are within 3 points of a row's first word join it."""
    rows: list[list[dict]] = []
    for word in sorted(words, key=middle):
        if rows and middle(word) - middle(rows[-1][0]) <= 3:
            rows[-1].append(word)
        else:
            rows.append([word])
    return "\n".join(" ".join(w["text"] for w in sorted(row, key=lambda w: w["x0"])) for row in rows)


def middle(word: dict) -> float:
    return (word["top"] + word["bottom"]) / 2


@pytest.mark.django_db
def test_the_invoice_reads_as_an_invoice(account, march_usage, settings):
    settings.ELBIA_INVOICE_ISSUER = "Elbia Lambda Ltd"
    settings.ELBIA_INVOICE_ISSUER_ADDRESS = "1 Example Street|Dublin D02 XY45|Ireland"
    settings.ELBIA_INVOICE_ISSUER_EMAIL = "billing@elbia.example"
    settings.ELBIA_INVOICE_DUE_DAYS = 30
    account.name = "Acme <Rockets> & Co"
    account.save()
    owner = account.users.get()
    owner.email = "accounts@acme.example"
    owner.save()
    invoice = invoice_generate_for_month(account=account, month=MARCH)
    content = invoice_render_pdf(invoice=invoice).pdf.read()

    images = render_png(content, "invoice")
    assert len(images) == 1
    pages = text_boxes(content)
    assert_no_overlapping_text(pages)
    text = line_text(pages[0])
    for expected in (
        "Elbia Lambda Ltd INVOICE",
        "1 Example Street",
        "Dublin D02 XY45",
        "billing@elbia.example",
        "BILL TO",
        "Acme <Rockets> & Co",
        "accounts@acme.example",
        f"Invoice number {invoice.public_id}",
        "Issue date 2024-03-31",
        "Due date 2024-04-30",
        "Period 2024-03-01 to 2024-03-31 (UTC)",
        "Currency USD",
        "Description Quantity Unit Unit price Amount",
        "Function requests 7 requests $2,500 / 1M requests $0.02",
        "Function duration 3,600.5 GB-seconds $0.01 / GB-second $36.01",
        "Subtotal $108.07",
        "Total (USD) $108.07",
        "Payment due by 30 April 2024.",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    words = pages[0]
    assert len(column_right_edges(words, "Amount", AMOUNT)) == 1  # the amounts, subtotal and total align right
    assert len(column_right_edges(words, "Quantity", re.compile(r"^[\d,.]+$"))) == 1
    # Black text on a white page: some ink, mostly paper.
    ink = sum(images[0].convert("L").histogram()[:128]) / (images[0].width * images[0].height)
    assert 0.003 < ink < 0.2


def test_long_values_wrap_within_their_columns_over_several_pages(settings):
    """Absurdly long names, quantities and price units wrap inside their cells; pages repeat the header row."""
    settings.ELBIA_INVOICE_ISSUER_ADDRESS = "A very long street name that goes on and on, building 12345, floor 67|City"
    account = Account(name="The Extraordinarily Long-Named International Holding Company of Rockets and Rocketry " * 2)
    invoice = Invoice(
        public_id="INV_0123456789", account=account, period=date(2024, 3, 1), date=date(2024, 3, 31), amount_cents=0
    )
    lines = []
    for position in range(60):
        cents = 123_456_789 + position  # $1,234,567.89 and up: the widest amount the column is made for
        invoice.amount_cents += cents
        lines.append(
            InvoiceLine(
                position=position,
                kind="instance_hour",
                description=f"Compute instances (x{position}.metal-48xlarge-with-a-very-long-name)",
                quantity=Decimal("123456789012.123456"),
                unit="hours",
                unit_price=Decimal("0.0000166667"),
                price_unit="GB-second of something long",
                amount_cents=cents,
            )
        )
    content = render_invoice_pdf(invoice=invoice, lines=lines, bill_to_email="a" * 60 + "@example.com")

    images = render_png(content, "invoice-long")
    assert len(images) > 1
    pages = text_boxes(content)
    assert_no_overlapping_text(pages)
    for words in pages:  # the header row repeats on every page, its columns aligned
        assert len(column_right_edges(words, "Amount", AMOUNT)) == 1
        assert sum(1 for word in words if AMOUNT.match(word["text"])) >= 10
    assert "Total (USD)" in line_text(pages[-1])
