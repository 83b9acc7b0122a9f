"""Meeting transcripts written as `Speaker: text` lines (in .txt or .md files)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.knowledge.chunking import Utterance
from bot.knowledge.formats.base import (
    attendees,
    decode_text,
    document_date,
    header_fields,
    header_key,
    make_document,
    merge_people,
)
from bot.knowledge.formats.markdown import SUFFIXES as MARKDOWN_SUFFIXES
from bot.knowledge.formats.markdown import clean_markdown
from bot.knowledge.store import Document

SUFFIXES = (".txt", *MARKDOWN_SUFFIXES)

# An optional "[00:12:03]" timestamp before the name. The rest of a turn line is split with
# str methods: as one regex, `\s*` and `\s+` on both sides of a name that may itself contain
# spaces shared every run of spaces, which took quadratic time when the line then failed.
_TIMESTAMP = re.compile(r"\s*(?:\[?\d{1,2}:\d{2}(?::\d{2})?\]?\s+)?")
_MAX_NAME = 40
_PARTICLES = frozenset("van von der den de da del di du dos la le al bin ben ter".split())
_MIN_TURNS = 3
_MIN_SHARE = 0.5  # "mostly": at least half of the non-header lines are turns


def _is_name(name: str) -> bool:
    """Short, capitalised words ("Amara Okafor", "Grad E", "Speaker 2"), no URLs."""
    words = name.split()
    if not 1 <= len(words) <= 4 or not words[0][0].isupper():
        return False
    if any(ch in name for ch in '/@#<>()[]{}"=') or "http" in name.lower():
        return False
    return all(w[0].isupper() or w[0].isdigit() or w.lower() in _PARTICLES for w in words)


def _split_turn(line: str) -> tuple[str, str] | None:
    """(name, text) of a `[timestamp] Name: text` line: at most 40 characters before the
    first colon, whitespace after it, then the words spoken; else None."""
    rest = line[_TIMESTAMP.match(line).end() :]  # type: ignore[union-attr]
    name, colon, said = rest.partition(":")
    name, text = name.strip(), said.lstrip()
    text = text[:-1] if text.endswith("\n") else text
    if not colon or not said[:1].isspace() or not text or "\n" in name + text:
        return None
    return (name, text) if 0 < len(name) <= _MAX_NAME else None


def match_turn(line: str) -> Utterance | None:
    """The turn on this line, or None for header lines, prose and URLs."""
    parts = _split_turn(line)
    if not parts or header_key(line) or parts[1].startswith("//"):
        return None
    name, text = parts
    return Utterance(name, text.strip()) if _is_name(name) else None


def looks_like_transcript(text: str) -> bool:
    """True when most lines are `Name: text` turns and some speaker talks more than once."""
    lines = [ln for ln in text.split("\n") if ln.strip() and not header_key(ln)]
    turns = [t for t in map(match_turn, lines) if t]
    if len(turns) < _MIN_TURNS or len(turns) < _MIN_SHARE * len(lines):
        return False
    # A glossary ("Capacity: ...") has each term once; people in a meeting speak again.
    return len({t.speaker for t in turns}) < len(turns)


def read_turns(text: str) -> list[Utterance]:
    """Turns in order: lines before the first turn and lines after a blank line are
    narration (speaker ""); other lines continue the turn above them."""
    out: list[Utterance] = []
    preamble: list[str] = []
    after_blank = False
    for line in text.split("\n"):
        if not line.strip():
            after_blank = True
            continue
        turn = match_turn(line)
        if turn:
            out.append(turn)
        elif not out:
            preamble.append(line.strip())
        elif after_blank or header_key(line) or not out[-1].speaker:
            out.append(Utterance("", line.strip()))
        else:
            out[-1] = Utterance(out[-1].speaker, f"{out[-1].text}\n{line.strip()}")
        after_blank = False
    if preamble:
        # The header block (title, date, attendees) stays together in the first chunk.
        out.insert(0, Utterance("", "\n".join(preamble)))
    return out


def _prepare(path: Path, data: bytes) -> tuple[str, str]:
    """Decoded text (Markdown markup removed for .md files) and its first heading."""
    text = decode_text(data)
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return clean_markdown(text)
    return text, ""


def sniff(path: Path, data: bytes) -> bool:
    """Registry hook: is this text file a `Speaker: text` transcript?"""
    return looks_like_transcript(_prepare(path, data)[0])


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a `Speaker: text` transcript; attendees and speakers become the people."""
    text, first_heading = _prepare(path, data)
    lines = text.split("\n")
    turns = read_turns(text)
    fields = header_fields(line for line in lines if not match_turn(line))
    speakers = dict.fromkeys(t.speaker for t in turns if t.speaker)
    return make_document(
        path,
        data,
        title=first_heading or fields.get("title", "") or fields.get("subject", ""),
        kind="transcript",
        date=document_date(fields, path, lines),
        people=merge_people(attendees(fields), speakers),
        turns=turns,
        doc_id=doc_id,
        source=source,
    )
