"""Markdown documents: title from the first heading, markup stripped, text kept."""

from __future__ import annotations

import re
from pathlib import Path

from bot.knowledge.formats.base import (
    attendees,
    decode_text,
    document_date,
    drop_spans,
    header_fields,
    make_document,
)
from bot.knowledge.store import Document

SUFFIXES = (".md", ".markdown")

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)
# Only the opening of an ATX heading is a regex: `(.*?)(?:\s+#+)?\s*$` for the rest took
# quadratic time on a heading with a long run of spaces inside (see `_heading`).
_HEADING_START = re.compile(r"\s{0,3}#{1,6}\s+")
_SETEXT_RULE = re.compile(r"^\s{0,3}(?:=+|-{2,})\s*$")
_RULE = re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$")
_FENCE = re.compile(r"^\s{0,3}(?:```|~~~)")
# `\s*(?:\|\s*)?` rather than `\s*\|?\s*`: two `\s*` around an optional pipe share every
# run of spaces, which is quadratic when the line then fails to match.
_TABLE_RULE = re.compile(r"^\s*(?:\|\s*)?:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*(?:\|\s*)?$")
# Comments and links are removed with str methods (`drop_spans`, `_link_texts`): as regexes
# tried at every position they rescanned the rest of the text from each unclosed `<!--`,
# `[` or `](`. These stay linear: a scan stops at the next `*`, backtick or line end, and
# any two `**` (or `__`) on a line pair up, so only a line's last few openers scan to its end.
_INLINE = (
    (re.compile(r"\*\*(.+?)\*\*|__(.+?)__"), r"\1\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`\n]*)`"), r"\1"),
)


def _heading(line: str) -> str | None:
    """The text of an ATX heading line (`## Title ##` -> 'Title'), else None."""
    start = _HEADING_START.match(line)
    if start is None:
        return None
    text = line[start.end() :].rstrip()
    bare = text.rstrip("#")
    # A closing run of #s counts only when a space separates it from the heading text.
    return bare.rstrip() if bare != text and bare[-1:].isspace() else text


def _link_texts(text: str) -> str:
    r"""Links and images keep their text: `[text](url)` and `![alt](src)` -> text, as
    re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text) does, in linear time."""
    kept: list[str] = []
    done = 0
    start = text.find("[")
    while start != -1:
        close = text.find("]", start + 1)
        if close == -1:
            break  # no later "[" is closed either
        if not text.startswith("(", close + 1):
            start = text.find("[", close + 1)  # every "[" before `close` fails the same way
            continue
        end = text.find(")", close + 2)
        if end == -1:
            break  # no later "](" is closed either
        bang = start - 1 if start > done and text[start - 1] == "!" else start
        kept += [text[done:bang], text[start + 1 : close]]
        done = end + 1
        start = text.find("[", done)
    kept.append(text[done:])
    return "".join(kept)


def clean_markdown(text: str) -> tuple[str, str]:
    """Strip Markdown markup, keeping the words; returns (plain text, first heading)."""
    front = _FRONT_MATTER.match(text)
    header = ""
    if front:
        # YAML front matter (`title: ...`, `date: ...`) becomes ordinary header lines.
        header = "\n".join(line[:1].upper() + line[1:] for line in front[1].splitlines())
        text = text[front.end() :]
    text = _link_texts(drop_spans(text, "<!--", "-->"))
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
        if (heading := _heading(line)) is not None:
            first_heading = first_heading or heading.strip()
            # A heading is its own paragraph, so chunking can keep it with its section.
            lines.extend(["", heading.strip(), ""])
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
