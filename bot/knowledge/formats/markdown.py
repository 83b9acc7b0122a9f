"""Markdown documents: title from the first heading, markup stripped, text kept."""

from __future__ import annotations

import re
from pathlib import Path

from bot.knowledge.formats.base import (
    attendees,
    decode_text,
    document_date,
    header_fields,
    make_document,
)
from bot.knowledge.store import Document

SUFFIXES = (".md", ".markdown")

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT_RULE = re.compile(r"^\s{0,3}(?:=+|-{2,})\s*$")
_RULE = re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$")
_FENCE = re.compile(r"^\s{0,3}(?:```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE = (
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images keep their text
    (re.compile(r"\*\*(.+?)\*\*|__(.+?)__"), r"\1\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`\n]*)`"), r"\1"),
)


def clean_markdown(text: str) -> tuple[str, str]:
    """Strip Markdown markup, keeping the words; returns (plain text, first heading)."""
    front = _FRONT_MATTER.match(text)
    header = ""
    if front:
        # YAML front matter (`title: ...`, `date: ...`) becomes ordinary header lines.
        header = "\n".join(line[:1].upper() + line[1:] for line in front[1].splitlines())
        text = text[front.end() :]
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    lines: list[str] = []
    first_heading = ""
    for line in text.split("\n"):
        if _FENCE.match(line) or _TABLE_RULE.match(line):
            continue
        if _SETEXT_RULE.match(line) and lines and lines[-1].strip():
            first_heading = first_heading or lines[-1].strip()
            continue
        if _RULE.match(line):
            lines.append("")
            continue
        if m := _HEADING.match(line):
            first_heading = first_heading or m[1].strip()
            # A heading is its own paragraph, so chunking can keep it with its section.
            lines.extend(["", m[1].strip(), ""])
            continue
        lines.append(re.sub(r"^\s{0,3}>\s?", "", line))
    body = "\n".join(lines).strip()
    return (f"{header}\n\n{body}" if header else body), first_heading


def title_and_fields(path: Path, text: str, first_heading: str) -> tuple[str, dict[str, str]]:
    """The title (first heading, else a `Title:` line) and the header fields."""
    fields = header_fields(text.split("\n"))
    return first_heading or fields.get("title", "") or fields.get("subject", ""), fields


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a Markdown document into a prose Document."""
    text, first_heading = clean_markdown(decode_text(data))
    title, fields = title_and_fields(path, text, first_heading)
    return make_document(
        path,
        data,
        title=title,
        kind="markdown",
        date=document_date(fields, path, text.split("\n")),
        people=attendees(fields),
        text=text,
        doc_id=doc_id,
        source=source,
    )
