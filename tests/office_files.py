"""PDF and Word files built in code, for the format, ingest and add-from-the-phone tests."""

from __future__ import annotations

import io
from collections.abc import Sequence

import docx
from pypdf import PdfWriter

# Text PDFs are written by hand (pypdf reads PDFs well but cannot lay out text): one
# Helvetica line per string. A page given as None holds only an image, as a scanner
# makes it: no text layer at all.


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: Sequence[Sequence[str] | None], title: str = "") -> bytes:
    """A PDF with one page per item: its lines as text, or None for an image-only page."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        5: f"<< /Title ({_pdf_string(title)}) /Producer (tests) >>".encode("latin-1"),
    }
    pixels = bytes((x * 16 + y * 5) % 256 for y in range(32) for x in range(32))
    objects[4] = (
        b"<< /Type /XObject /Subtype /Image /Width 32 /Height 32 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n%s\nendstream" % (len(pixels), pixels)
    )
    kids = []
    for i, lines in enumerate(pages):
        page, contents = 6 + 2 * i, 7 + 2 * i
        kids.append(f"{page} 0 R")
        if lines is None:
            stream = b"q 450 0 0 600 80 100 cm /Im1 Do Q"
        else:
            shown = "".join(f"({_pdf_string(line)}) Tj T* " for line in lines)
            stream = f"BT /F1 11 Tf 14 TL 60 760 Td {shown}ET".encode("latin-1")
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {contents} 0 R "
            "/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> >>"
        ).encode()
        objects[contents] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    return pdf_from_objects(objects, info=5)


def pdf_from_objects(objects: dict[int, bytes], info: int | None = None) -> bytes:
    """A PDF file of these numbered objects (1 the catalog, `info` the document information),
    with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets.get(n, 0) for n in range(1, size))
    trailer = b"/Size %d /Root 1 0 R" % size + (b" /Info %d 0 R" % info if info else b"")
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def encrypted_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    """`data` encrypted by pypdf (RC4-128: AES would need the cryptography package)."""
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(blocks: Sequence[tuple[str, str | list[list[str]]]], title: str = "") -> bytes:
    """A .docx written by python-docx: (style, text) paragraphs ("" is Normal, "Title",
    "Heading 2", ...) and ("table", rows) tables; `title` is the core property."""
    document = docx.Document()
    document.core_properties.title = title
    for style, content in blocks:
        if style == "table":
            rows = content
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for row, cells in zip(table.rows, rows, strict=True):
                for cell, text in zip(row.cells, cells, strict=True):
                    cell.text = text
        else:
            document.add_paragraph(str(content), style=style or None)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


BOARD_MINUTES = [  # a heading per page; the facts are asked about in the tests
    ["Opening", "Attendees: Amara Okafor, Jonas Weber", "The chair opened the meeting at ten."],
    ["Budget", "The board approved a budget of 40,000 euros for the Nairobi office."],
    ["Hiring", "Two engineers join in May; the recruiter is Priya Raman."],
]
STRATEGY_REVIEW = [
    ("Title", "Strategy review"),
    ("", "Notes from the spring strategy day."),
    ("Heading 1", "Budget"),
    ("", "The travel budget is 12,000 euros, half of it for Kisumu."),
    ("table", [["Item", "Cost"], ["Flights", "7,000"], ["Hotels", "5,000"]]),
    ("Heading 2", "Risks"),
    ("", "Currency swings could eat a tenth of the travel money."),
    ("Heading 1", "Partners"),
    ("", "The Mombasa cooperative signs its agreement in June."),
]
