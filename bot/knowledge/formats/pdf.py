"""PDF documents (pypdf): the text layer page by page, every passage labelled with its page.

A PDF whose pages carry no text at all is a scan: `parse` raises NoTextLayer, and ingest
reads its pages by OCR when a model key is configured (`from_ocr`), else skips it."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from bot.knowledge.formats.base import (
    ParseError,
    attendees,
    document_date,
    header_fields,
    make_document,
)
from bot.knowledge.formats.markdown import clean_markdown
from bot.knowledge.store import Document

SUFFIXES = (".pdf",)
# Mistral's OCR takes documents of up to 50 MB and 1,000 pages; a text PDF past either is
# a book or an archive, not a team's document, and its parse would hold ingest for minutes.
MAX_BYTES = 50 * 1024 * 1024
MAX_PAGES = 1000

# pypdf logs what it repairs in a slightly malformed file ("EOF marker not found") as
# warnings; a file it cannot read becomes one ParseError line in the ingest summary instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# Names that tools write into a PDF's Title when nobody set one.
_PLACEHOLDER_TITLE = re.compile(
    r"(?:microsoft \w+ - .*|untitled.*|document\d*|.*\.(?:docx?|pdf|pptx?|xlsx?|odt|rtf|txt))",
    re.I,
)
_IMAGE_LINE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")  # OCR Markdown: `![img-0.jpeg](img-0.jpeg)`


class NoTextLayer(ParseError):
    """A PDF without text on any page (a scan); `pages` and `title` are what OCR needs."""

    def __init__(self, pages: int, title: str) -> None:
        super().__init__("no text layer (a scanned PDF?)")
        self.pages = pages
        self.title = title


def _reason(exc: Exception) -> str:
    """A short, one-line description of a pypdf failure."""
    message = " ".join(str(exc).split())[:120]
    return message or type(exc).__name__


def _title(reader: PdfReader) -> str:
    """The document information's Title, unless a tool's placeholder."""
    title = " ".join(str((reader.metadata or {}).get("/Title") or "").split())
    return "" if _PLACEHOLDER_TITLE.fullmatch(title) else title


def _unlock(reader: PdfReader) -> None:
    """Open an encrypted PDF that needs no password to read (only to edit or print)."""
    try:
        opened = reader.decrypt("")
    except DependencyError:
        raise ParseError(
            "encrypted with AES, which ingest cannot open: save an unprotected copy"
        ) from None
    if opened == PasswordType.NOT_DECRYPTED:
        raise ParseError("password-protected: remove the password and ingest it again")


def read_pages(data: bytes) -> tuple[list[str], str]:
    """Each page's text layer ("" for a page without one) and the title; raises ParseError
    for an encrypted, malformed or oversized file."""
    if len(data) > MAX_BYTES:
        raise ParseError(f"too large ({len(data) / 2**20:.0f} MB; the limit is 50 MB)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _unlock(reader)
        count = len(reader.pages)
        if count > MAX_PAGES:
            raise ParseError(f"too many pages ({count:,}; the limit is {MAX_PAGES:,})")
        title = _title(reader)
        texts = [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many kinds (and RecursionError) on broken files
        raise ParseError(f"not a readable PDF ({_reason(exc)})") from None
    if not texts:
        raise ParseError("a PDF without pages")
    return texts, title


def _document(
    path: Path,
    data: bytes,
    texts: list[str],
    title: str,
    doc_id: str | None,
    source: str | None,
) -> Document:
    """One section per page with text, labelled "p. N"; header lines read from page 1."""
    lines = texts[0].split("\n")
    fields = header_fields(lines)
    return make_document(
        path,
        data,
        title=fields.get("title", "") or fields.get("subject", "") or title,
        kind="pdf",
        date=document_date(fields, path, lines),
        people=attendees(fields),
        sections=[(f"p. {n}", text) for n, text in enumerate(texts, start=1) if text.strip()],
        doc_id=doc_id,
        source=source,
    )


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a PDF's text layer; raises NoTextLayer for a scan (see `from_ocr`)."""
    texts, title = read_pages(data)
    if not any(text.strip() for text in texts):
        raise NoTextLayer(len(texts), title)
    return _document(path, data, texts, title, doc_id, source)


def from_ocr(
    path: Path,
    data: bytes,
    scan: NoTextLayer,
    pages: list[str],
    *,
    doc_id: str | None = None,
    source: str | None = None,
) -> Document:
    """The Document of a scan from its pages' OCR Markdown (one string per page)."""
    texts, headings = [], []
    for page in pages:
        lines = (line for line in page.split("\n") if not _IMAGE_LINE.fullmatch(line.strip()))
        text, heading = clean_markdown("\n".join(lines))
        texts.append(text)
        headings.append(heading)
    title = scan.title or next((h for h in headings if h), "")
    return _document(path, data, texts or [""], title, doc_id, source)
