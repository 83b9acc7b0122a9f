"""The format registry: which parser reads a file, chosen by suffix and content sniffing.

Formats are tried in order; the first whose suffix matches and whose `sniff` (if any)
accepts the bytes wins. A format is one module with `SUFFIXES`, `parse` and optionally
`sniff` (and `MAX_BYTES`, checked before a file is read), plus one `register(...)` call
below, placed before the generic format it refines (a WhatsApp export is also a .txt file,
so it is sniffed before transcripts and text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge.formats import docx, markdown, pdf, qmsum, text, transcript, vtt, whatsapp
from bot.knowledge.formats.base import ParseError, Parser
from bot.knowledge.store import Document

__all__ = [
    "Format",
    "ParseError",
    "find_format",
    "formats",
    "max_bytes",
    "parse_file",
    "register",
]


@dataclass(frozen=True)
class Format:
    """One file format: the suffixes it claims, an optional content check, its parser."""

    name: str
    suffixes: tuple[str, ...]
    parse: Parser
    sniff: Callable[[Path, bytes], bool] | None = None
    max_bytes: int | None = None  # larger files are refused before they are read

    def accepts(self, path: Path, data: bytes) -> bool:
        """True when the suffix matches and the sniffer (if any) recognises the content."""
        if path.suffix.lower() not in self.suffixes:
            return False
        return self.sniff is None or self.sniff(path, data)


_FORMATS: list[Format] = []


def register(fmt: Format, *, before: str | None = None) -> None:
    """Add (or replace) a format, ahead of the format named `before` or at the end."""
    _FORMATS[:] = [f for f in _FORMATS if f.name != fmt.name]
    names = [f.name for f in _FORMATS]
    _FORMATS.insert(names.index(before) if before in names else len(_FORMATS), fmt)


def formats() -> tuple[Format, ...]:
    """The registered formats, in the order they are tried."""
    return tuple(_FORMATS)


def supported_suffixes() -> frozenset[str]:
    """Every suffix some format claims (lower case, with the dot)."""
    return frozenset(s for f in _FORMATS for s in f.suffixes)


def max_bytes(path: Path) -> int | None:
    """The size past which no format claiming this file's suffix reads it (None: no limit)."""
    limits = [f.max_bytes for f in _FORMATS if path.suffix.lower() in f.suffixes]
    return None if not limits or None in limits else max(limits)  # type: ignore[type-var]


def find_format(path: Path, data: bytes) -> Format | None:
    """The first format that accepts this file, or None."""
    return next((f for f in _FORMATS if f.accepts(path, data)), None)


def parse_file(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a file with the format that accepts it; raises ParseError otherwise."""
    fmt = find_format(path, data)
    if fmt is None:
        raise ParseError(f"unsupported file format ({path.suffix or 'no suffix'})")
    return fmt.parse(path, data, doc_id=doc_id, source=source)


# Specific formats first: sniffed ones, then the generic fallbacks for each suffix.
register(Format("qmsum", qmsum.SUFFIXES, qmsum.parse, qmsum.sniff))
register(Format("vtt", vtt.SUFFIXES, vtt.parse))
register(Format("whatsapp", whatsapp.SUFFIXES, whatsapp.parse, whatsapp.sniff))
register(Format("transcript", transcript.SUFFIXES, transcript.parse, transcript.sniff))
register(Format("markdown", markdown.SUFFIXES, markdown.parse))
register(Format("text", text.SUFFIXES, text.parse))
register(Format("pdf", pdf.SUFFIXES, pdf.parse, max_bytes=pdf.MAX_BYTES))
register(Format("docx", docx.SUFFIXES, docx.parse, max_bytes=docx.MAX_BYTES))
