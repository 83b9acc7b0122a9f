"""PDF and Word parsers: pages and headings as chunk locations, scans, protected, broken and
oversized files (the files are built in code: tests/knowledge/conftest.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from bot.knowledge.formats import ParseError, docx, parse_file, pdf
from tests.office_files import docx_bytes, encrypted_pdf, pdf_bytes

LONG_PAGE = [f"Line {n} of the long budget annex lists one more cost in detail." for n in range(60)]


def parse(name: str, data: bytes):
    return parse_file(Path(name), data)


def locations(doc) -> list[str]:
    return [c.location for c in doc.chunks]


def test_pdf_chunks_carry_their_page(office_files) -> None:
    doc = parse("board-minutes-march.pdf", office_files["board-minutes-march.pdf"])
    assert (doc.title, doc.kind, doc.date) == ("Board minutes March", "pdf", "")
    assert doc.people == ("Amara Okafor", "Jonas Weber")  # the Attendees line on page 1
    assert locations(doc) == ["p. 1", "p. 2", "p. 3"]
    assert "40,000 euros" in doc.chunks[1].text and "Priya Raman" in doc.chunks[2].text
    assert [c.seq for c in doc.chunks] == [0, 1, 2]


def test_a_chunk_never_spans_two_pages() -> None:
    doc = parse("annex.pdf", pdf_bytes([["Short first page."], LONG_PAGE, ["Closing page."]]))
    assert locations(doc)[0] == "p. 1" and locations(doc)[-1] == "p. 3"
    annex = [c for c in doc.chunks if c.location == "p. 2"]
    assert len(annex) > 1  # a long page is several chunks, each labelled with it
    assert "\n".join(c.text for c in annex).split("\n") == LONG_PAGE
    assert [c.seq for c in doc.chunks] == list(range(len(doc.chunks)))


def test_pdf_title_from_a_title_line_else_metadata_else_the_file_name() -> None:
    titled = pdf_bytes([["Title: Audit plan", "Date: 4 March 2026", "We met."]], title="Ignored")
    assert (parse("a.pdf", titled).title, parse("a.pdf", titled).date) == (
        "Audit plan",
        "2026-03-04",
    )
    assert parse("a.pdf", pdf_bytes([["We met."]], title="Board call")).title == "Board call"
    placeholder = pdf_bytes([["We met."]], title="Microsoft Word - minutes.docx")
    assert parse("2026-01-05_board-call.pdf", placeholder).title == "Board call"


def test_a_scan_raises_no_text_layer_with_what_ocr_needs(office_files) -> None:
    with pytest.raises(pdf.NoTextLayer, match="no text layer") as caught:
        parse("scanned-receipts.pdf", office_files["scanned-receipts.pdf"])
    assert (caught.value.pages, caught.value.title) == (2, "")
    assert isinstance(caught.value, ParseError)  # ingest without OCR treats it as one


def test_ocr_pages_become_located_chunks(office_files) -> None:
    data = office_files["scanned-receipts.pdf"]
    scan = pdf.NoTextLayer(pages=3, title="")
    pages = [
        "# Receipts March\n\n![img-0.jpeg](img-0.jpeg)\n\nTaxi to the **airport**: 40 euros.",
        "",
        "| Item | Cost |\n| --- | --- |\n| Hotel | 300 |",
    ]
    doc = pdf.from_ocr(Path("scanned-receipts.pdf"), data, scan, pages, doc_id="d", source="s")
    assert (doc.title, doc.kind, doc.id, doc.source) == ("Receipts March", "pdf", "d", "s")
    assert locations(doc) == ["p. 1", "p. 3"]  # the empty page has no chunk
    assert "Taxi to the airport: 40 euros." in doc.chunks[0].text
    assert "img-0" not in doc.chunks[0].text and "**" not in doc.chunks[0].text
    assert "Hotel | 300" in doc.chunks[1].text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("locked.pdf", "password-protected"),
        ("truncated.pdf", "not a readable PDF"),
        ("broken.docx", "not a Word .docx file"),
    ],
)
def test_protected_and_broken_files_raise_parse_error(office_files, name, message) -> None:
    with pytest.raises(ParseError, match=message):
        parse(name, office_files[name])


def test_a_pdf_protected_only_against_editing_is_read(office_files) -> None:
    # An owner password with an empty user password: any reader opens it without asking.
    data = encrypted_pdf(office_files["board-minutes-march.pdf"], user_password="")
    assert locations(parse("minutes.pdf", data)) == ["p. 1", "p. 2", "p. 3"]


def test_oversized_files_are_refused(monkeypatch) -> None:
    three_pages = pdf_bytes([["One."], ["Two."], ["Three."]])
    monkeypatch.setattr(pdf, "MAX_PAGES", 2)
    with pytest.raises(ParseError, match="too many pages"):
        parse("long.pdf", three_pages)
    monkeypatch.setattr(pdf, "MAX_BYTES", len(three_pages) - 1)
    with pytest.raises(ParseError, match="too large"):
        parse("big.pdf", three_pages)
    word = docx_bytes([("", "Hello.")])
    monkeypatch.setattr(docx, "MAX_UNPACKED_BYTES", 10_000)
    with pytest.raises(ParseError, match="too large unpacked"):
        parse("bomb.docx", word)


def test_word_chunks_carry_the_heading_they_are_under(office_files) -> None:
    doc = parse("strategy-review.docx", office_files["strategy-review.docx"])
    assert (doc.title, doc.kind) == ("Strategy review", "word")
    assert locations(doc) == ["", "Budget", "Risks", "Partners"]
    budget = doc.chunks[1].text
    assert budget.startswith("Budget\n") and "12,000 euros" in budget
    assert "Item | Cost\nFlights | 7,000\nHotels | 5,000" in budget  # the table, row by row
    assert "Mombasa" in doc.chunks[3].text and "Mombasa" not in budget


def test_word_headings_are_found_by_outline_level_whatever_the_style_name() -> None:
    data = docx_bytes([("", "Intro."), ("Heading 1", "Finanzen"), ("", "Das Budget steht.")])
    # A German Word names the style "Überschrift 1": renamed, with Word's outline level.
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    styles = parts["word/styles.xml"].decode()
    assert 'w:styleId="Heading1"' in styles
    styles = styles.replace('w:val="heading 1"', 'w:val="berschrift 1"')
    parts["word/styles.xml"] = styles.encode()
    renamed = io.BytesIO()
    with zipfile.ZipFile(renamed, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    doc = parse("notizen.docx", renamed.getvalue())
    assert locations(doc) == ["", "Finanzen"]


def test_a_word_file_without_headings_has_unlabelled_chunks() -> None:
    doc = parse("notes.docx", docx_bytes([("", "Title: Call notes"), ("", "We met.")]))
    assert doc.title == "Call notes" and locations(doc) == [""]


def test_a_location_is_one_short_line() -> None:
    heading = "A heading that is really a whole paragraph styled as one, " * 4
    doc = parse("x.docx", docx_bytes([("Heading 1", heading), ("", "Body.")]))
    (chunk,) = doc.chunks
    assert len(chunk.location) == 80 and chunk.location.endswith("…")
    assert "\n" not in chunk.location
