"""Word documents (.docx, python-docx): paragraphs and tables in order, split into sections
at headings, every passage labelled with the heading it is under."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
from docx.oxml.ns import qn

from bot.knowledge.formats.base import (
    ParseError,
    attendees,
    document_date,
    header_fields,
    make_document,
)
from bot.knowledge.store import Document

SUFFIXES = (".docx",)
# Past these a .docx is an archive of images, not a team's document. The unpacked limit
# guards against a small archive of huge (or highly compressed) parts: python-docx loads
# every part into memory.
MAX_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024

TITLE = -1  # the level of the Title style: the document's title, not a section
_BODY = 0
_MAX_BASED_ON = 16  # how far a style's basedOn chain is followed (cycles end there too)
# What python-docx calls a document without a core properties part.
_PLACEHOLDER_TITLES = frozenset({"word document", "document", "untitled"})


_P, _TBL, _TR, _TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_PPR, _PSTYLE, _OUTLINE, _VAL = qn("w:pPr"), qn("w:pStyle"), qn("w:outlineLvl"), qn("w:val")


def _property(element: Any, tag: str) -> str:
    """The `w:val` of a paragraph property (`w:pPr/<tag>`) of a paragraph or style, or ""."""
    properties = element.find(_PPR)
    found = properties.find(tag) if properties is not None else None
    return str(found.get(_VAL) or "") if found is not None else ""


def _outline_level(element: Any) -> int | None:
    """The heading level of a `w:outlineLvl` among `element`'s paragraph properties (0-8 ->
    1-9; 9 is body text), or None when it has none."""
    value = _property(element, _OUTLINE)
    if not value.isdigit():
        return None
    return int(value) + 1 if int(value) < 9 else _BODY


def _own_level(style: Any) -> int | None:
    """A paragraph style's own level: its outline level, else from its name ("heading 2",
    "Title"; the names Word writes whatever the language), else None (ask its base)."""
    if (level := _outline_level(style)) is not None:
        return level
    name_element = style.find(qn("w:name"))
    name = str(name_element.get(_VAL) or "") if name_element is not None else ""
    name = " ".join(name.lower().split())
    if name == "title":
        return TITLE
    kind, _, number = name.partition(" ")
    if kind == "heading" and number.isdigit() and 1 <= int(number) <= 9:
        return int(number)
    return None


def style_levels(styles: Any) -> dict[str, int]:
    """Paragraph style id -> heading level (1-9), TITLE, or 0 for body text; resolved once
    per style, so each paragraph costs one lookup."""
    own: dict[str, int | None] = {}
    based_on: dict[str, str] = {}
    for style in styles.iterchildren(qn("w:style")):
        style_id = str(style.get(qn("w:styleId")) or "")
        own[style_id] = _own_level(style)
        base = style.find(qn("w:basedOn"))
        based_on[style_id] = str(base.get(_VAL) or "") if base is not None else ""
    levels: dict[str, int] = {}
    for style_id in own:
        current, level = style_id, None
        for _ in range(_MAX_BASED_ON):
            level = own.get(current)
            if level is not None or not based_on.get(current):
                break
            current = based_on[current]
        levels[style_id] = level or _BODY
    return levels


def _text(element: Any) -> str:
    """The text under an element in document order, with lxml's iterator (one C-speed pass,
    where python-docx runs an XPath per run): tabs and breaks kept, paragraphs nested in it
    (table cells, text boxes) separated by a space. Deleted text (`w:delText`) is left out."""
    parts: list[str] = []
    for node in element.iter(_T, _TAB, _BR, _CR, _P):
        if node.tag == _T:
            parts.append(node.text or "")
        elif node.tag == _TAB:
            parts.append("\t")
        elif node.tag == _P:
            parts.append(" " if parts else "")
        else:
            parts.append("\n")
    return "".join(parts)


def _table_text(table: Any) -> str:
    """One line per row, its cells' text joined by " | " (nested tables' text included)."""
    rows = []
    for row in table.iterchildren(_TR):
        cells = (" ".join(_text(cell).split()) for cell in row.iterchildren(_TC))
        if line := " | ".join(c for c in cells if c):
            rows.append(line)
    return "\n".join(rows)


def blocks(document: Any) -> Iterator[tuple[int, str]]:
    """(level, text) of each paragraph and table in the body, in order; level as in
    `style_levels` (tables and paragraphs without a heading style are 0)."""
    levels = style_levels(document.styles.element)
    for element in document.element.body.iterchildren(_P, _TBL):
        if element.tag == _TBL:
            yield _BODY, _table_text(element)
            continue
        level = _outline_level(element)
        if level is None:
            level = levels.get(_property(element, _PSTYLE), _BODY)
        yield level, _text(element)


def _open(data: bytes) -> Any:
    """The python-docx Document; raises ParseError for anything that is not a sane .docx."""
    if len(data) > MAX_BYTES:
        raise ParseError(f"too large ({len(data) / 2**20:.0f} MB; the limit is 50 MB)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        raise ParseError("not a Word .docx file (not a zip archive)") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ParseError(f"too large unpacked ({unpacked / 2**20:.0f} MB; the limit is 200 MB)")
    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx, zipfile and lxml raise many kinds on broken files
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ParseError(f"not a readable Word .docx file ({reason})") from None


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a .docx: one section per heading, labelled with it; text before the first
    heading has no label. The Title paragraph, a `Title:` line or the file's title names it."""
    document = _open(data)
    sections: list[tuple[str, list[str]]] = [("", [])]
    title = ""
    try:
        for level, text in blocks(document):
            if not text.strip():
                continue
            if level == TITLE:
                title = title or " ".join(text.split())
            if level > _BODY:
                sections.append((text, []))
            sections[-1][1].append(text)
        core_title = " ".join(str(document.core_properties.title or "").split())
    except Exception as exc:  # malformed XML inside a readable archive
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ParseError(f"not a readable Word .docx file ({reason})") from None
    if core_title.lower() in _PLACEHOLDER_TITLES:
        core_title = ""
    first = "\n".join(sections[0][1] or (sections[1][1] if len(sections) > 1 else []))
    lines = first.split("\n")
    fields = header_fields(lines)
    return make_document(
        path,
        data,
        title=title or fields.get("title", "") or fields.get("subject", "") or core_title,
        kind="word",
        date=document_date(fields, path, lines),
        people=attendees(fields),
        sections=[(where, "\n\n".join(texts)) for where, texts in sections],
        doc_id=doc_id,
        source=source,
    )
