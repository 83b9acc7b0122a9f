"""Plain-text documents: a `Title:` line or the file name gives the title."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.formats.base import (
    attendees,
    decode_text,
    document_date,
    header_fields,
    make_document,
)
from bot.knowledge.store import Document

SUFFIXES = (".txt",)


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a plain-text file into a prose Document."""
    text = decode_text(data)
    lines = text.split("\n")
    fields = header_fields(lines)
    return make_document(
        path,
        data,
        title=fields.get("title", "") or fields.get("subject", ""),
        kind="text",
        date=document_date(fields, path, lines),
        people=attendees(fields),
        text=text,
        doc_id=doc_id,
        source=source,
    )
