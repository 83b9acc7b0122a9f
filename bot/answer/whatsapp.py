"""Model text as a WhatsApp reply: Markdown rewritten to WhatsApp's formatting, sources named."""

from __future__ import annotations

import re

from bot.models import Passage
from bot.text import xml_safe

_HEADING_RE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_BOLD_RE = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*|__(\S(?:.*?\S)?)__")
_LINK_RE = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_RULE_RE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$\n?", re.MULTILINE)
_TABLE_RULE_RE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$\n?", re.M
)
_TABLE_ROW_RE = re.compile(r"^[ \t]*\|(.+)\|[ \t]*$", re.MULTILINE)
_SOURCES_RE = re.compile(
    r"^[\s*_]*(sources?|fuentes?|fontes?|fonti|quellen?|bronnen|r[ée]f[ée]rences?)[\s*_]*:",
    re.IGNORECASE,
)


def to_whatsapp(text: str) -> str:
    """Rewrite Markdown into WhatsApp formatting: no headings or tables, *bold*, plain links."""
    # The JSON may carry escapes of characters no reply can hold (a control character, a
    # lone surrogate that cannot even be stored as UTF-8).
    text = xml_safe(text)
    text = _BOLD_RE.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = _HEADING_RE.sub(lambda m: f"*{m.group(1).strip('*_ ')}*", text)
    text = _LINK_RE.sub(r"\1 (\2)", text)
    text = _TABLE_RULE_RE.sub("", text)
    # WhatsApp has no tables: one line per row, cells separated by a dash.
    text = _TABLE_ROW_RE.sub(lambda m: " – ".join(c.strip() for c in m.group(1).split("|")), text)
    text = _RULE_RE.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _mentions(text: str, label: str) -> bool:
    """True when `label` appears in `text` as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE) is not None


def with_sources(text: str, passages: list[Passage]) -> tuple[str, tuple[str, ...]]:
    """Make sure the text ends by naming its sources; return the sources it names."""
    labels = list(dict.fromkeys(" ".join(p.source.split()) for p in passages if p.source.strip()))
    if not labels:
        return text, ()
    lines = text.rstrip().splitlines()
    start = None
    for index in range(len(lines) - 1, max(-1, len(lines) - 9), -1):
        if _SOURCES_RE.match(lines[index]):
            start = index
            break
    tail = "\n".join(lines[start:] if start is not None else lines[-1:])
    cited = [label for label in labels if _mentions(tail, label)]
    if cited:
        return text.rstrip(), tuple(cited)
    if start is not None:
        # A sources line that names none of our labels (e.g. "[1], [2]") is no use to a user.
        lines = lines[:start]
    body = "\n".join(lines).rstrip()
    return f"{body}\n\nSources: {'; '.join(labels)}".lstrip(), tuple(labels)
