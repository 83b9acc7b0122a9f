"""Helpers shared by the format parsers: decoding, header fields, titles, dates, documents."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from bot.knowledge.chunking import Utterance, chunk_prose, chunk_transcript
from bot.knowledge.store import Document


class ParseError(ValueError):
    """A file cannot be turned into a document (binary, malformed, empty)."""


class Parser(Protocol):
    """What every format module's `parse` looks like."""

    def __call__(
        self, path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
    ) -> Document: ...


# `Key: value` lines that describe a meeting rather than quote a speaker.
HEADER_KEYS = frozenset(
    """title subject date time when where location venue agenda attendees attendance
    participants present people apologies absent regrets chair chaired facilitator
    minutes notes note author owner status due deadline priority goal tags updated
    created summary action actions decision decisions outcome q a question answer re cc
    to from source link links url see ref reference""".split()
) | {"last updated", "next steps", "action items", "meeting date"}
ATTENDEE_KEYS = ("attendees", "participants", "present", "attendance", "people")  # ordered
# Matched whole against the stripped text before the first colon. Header lines are split
# with str methods: the regex `\s*:\s*(?P<value>.*?)\s*$` took quadratic time on a value
# with a long run of spaces (a second per 16,000-space line).
_HEADER_KEY = re.compile(r"[A-Za-z][A-Za-z ]{0,20}")
# Separators between names. Without a leading `\s*` (`split_names` strips those spaces):
# tried at every position of a long run of spaces, it rescanned the run from each of them.
_NAME_SEPARATOR = re.compile(r"(?:[,;/&]|\band\b)\s*")
# C0 control characters other than tab and newline (carriage returns become newlines
# first): passages end up in TwiML, and XML 1.0 cannot carry them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

# A location (a page, a heading) is part of every source label: a heading that is really a
# styled paragraph must not make the label longer than the passage.
LOCATION_CHARS = 80

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_MONTHS = {
    m.lower(): i
    for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)
}
_DAY_MONTH_YEAR = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})")
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_SLASHED = re.compile(r"(?<!\d)(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?!\d)")


def decode_text(data: bytes) -> str:
    """Decode bytes as UTF-8 (BOM-aware, UTF-16 by BOM), falling back to Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Lenient like the cp1252 fallback: a truncated file (or a sniffer's 8 KB head cut
        # inside a surrogate pair) must not raise UnicodeDecodeError.
        text = data.decode("utf-16", errors="replace")
    else:
        if b"\x00" in data[:4096]:
            raise ParseError("binary file, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Notes exported from older Windows tools are often cp1252, never binary here.
            text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean_text(text: str) -> str:
    """Text without C0 control characters; tab and newline kept, carriage returns as newlines."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def drop_spans(text: str, opening: str, closing: str) -> str:
    """Remove each `opening ... closing` span (the shortest, left to right), as
    re.sub(opening + ".*?" + closing, "", text, flags=re.S) does, in linear time: the regex
    rescans the rest of the text from every `opening` that is never closed."""
    kept: list[str] = []
    done = 0
    while (start := text.find(opening, done)) != -1:
        end = text.find(closing, start + len(opening))
        if end == -1:
            break  # no later opening is closed either
        kept.append(text[done:start])
        done = end + len(closing)
    kept.append(text[done:])
    return "".join(kept)


def document_id(key: str) -> str:
    """A stable id for a document key (its path relative to the ingest root)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def humanise_stem(path: Path) -> str:
    """'2026-03-04_unea-prep_notes.md' -> 'Unea prep notes'."""
    stem = _ISO_DATE.sub(" ", path.stem)
    words = re.sub(r"[_\-\s.]+", " ", stem).strip()
    if not words:
        return path.stem or "Untitled"
    return words[0].upper() + words[1:]


def _valid(year: int, month: int, day: int) -> str:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return ""


def parse_date(value: str) -> str:
    """The first date in `value` as ISO YYYY-MM-DD, or "" (slashed dates are day-first)."""
    if m := _ISO_DATE.search(value):
        return _valid(int(m[1]), int(m[2]), int(m[3]))
    if (m := _DAY_MONTH_YEAR.search(value)) and m[2][:3].lower() in _MONTHS:
        return _valid(int(m[3]), _MONTHS[m[2][:3].lower()], int(m[1]))
    if (m := _MONTH_DAY_YEAR.search(value)) and m[1][:3].lower() in _MONTHS:
        return _valid(int(m[3]), _MONTHS[m[1][:3].lower()], int(m[2]))
    if m := _SLASHED.search(value):
        return _valid(int(m[3]), int(m[2]), int(m[1]))
    return ""


def header_line(line: str) -> tuple[str, str] | None:
    """(key, value) of a `Key: value` line (a key of up to 21 letters and spaces), else None."""
    head, colon, rest = line.partition(":")
    key, value = head.strip(), rest.strip()
    if not colon or "\n" in value or not _HEADER_KEY.fullmatch(key):
        return None
    return key, value


def header_key(line: str) -> str | None:
    """The lower-cased key of a `Date:`/`Attendees:`-style header line, else None."""
    parts = header_line(line)
    key = " ".join(parts[0].lower().split()) if parts else ""
    return key if key in HEADER_KEYS else None


def header_fields(lines: Iterable[str]) -> dict[str, str]:
    """The first value of each header key found in `lines`."""
    fields: dict[str, str] = {}
    for line in lines:
        key = header_key(line)
        if key and key not in fields:
            fields[key] = header_line(line)[1]  # type: ignore[index]
    return fields


def split_names(value: str) -> list[str]:
    """'Amara Okafor (chair), Jonas Weber and Priya' -> the three names."""
    *named, last = _NAME_SEPARATOR.split(drop_spans(value, "(", ")"))
    names = [n.rstrip() for n in named] + [last]  # spaces before a separator go with it
    return [n.strip(" .*_-") for n in names if 1 < len(n.strip(" .*_-")) <= 60]


def attendees(fields: dict[str, str]) -> list[str]:
    """Names from the `Attendees:` (or Participants/Present) header lines."""
    names = [n for key in ATTENDEE_KEYS if key in fields for n in split_names(fields[key])]
    return list(dict.fromkeys(names))


def merge_people(attendees: Sequence[str], speakers: Iterable[str]) -> tuple[str, ...]:
    """Attendees then speakers, without repeating a speaker known by first name only."""
    people = list(dict.fromkeys(attendees))
    known = {p.lower() for p in people}
    first_names = Counter(p.split()[0].lower() for p in people if p.split())
    for speaker in speakers:
        low = speaker.lower()
        if low in known or (" " not in speaker and first_names.get(low) == 1):
            continue
        people.append(speaker)
        known.add(low)
    return tuple(people)


def document_date(fields: dict[str, str], path: Path, lines: Sequence[str]) -> str:
    """A `Date:` line, else an ISO date in the file name, else one near the top, else ""."""
    for key in ("date", "meeting date", "when", "last updated", "updated", "created"):
        if key in fields and (found := parse_date(fields[key])):
            return found
    if found := parse_date(path.name):
        return found
    head = "\n".join(lines[:8])
    return _valid(*map(int, m.groups())) if (m := _ISO_DATE.search(head)) else ""


def location_label(text: str) -> str:
    """A chunk's location as shown after the title: one line of at most LOCATION_CHARS."""
    words = " ".join(clean_text(text).split())
    return words if len(words) <= LOCATION_CHARS else words[: LOCATION_CHARS - 1].rstrip() + "…"


def make_document(
    path: Path,
    data: bytes,
    *,
    title: str,
    kind: str,
    date: str,
    people: Sequence[str] = (),
    turns: Sequence[Utterance] | None = None,
    text: str = "",
    sections: Sequence[tuple[str, str]] | None = None,
    doc_id: str | None = None,
    source: str | None = None,
) -> Document:
    """Chunk the parsed content (turns for transcripts, (location, text) sections for pages
    and headings, else prose) into a Document.

    Every format ends here, so this is where control characters are removed (`clean_text`)
    from whatever a parser produced, JSON escapes and character references included."""
    if turns is not None:
        turns = [Utterance(clean_text(t.speaker), clean_text(t.text)) for t in turns]
        chunks = chunk_transcript(turns)
    elif sections is not None:
        # Each section is chunked on its own: no chunk spans two pages or headings.
        located = [
            (location_label(where), chunk)
            for where, section in sections
            for chunk in chunk_prose(clean_text(section))
        ]
        chunks = [replace(chunk, seq=i, location=where) for i, (where, chunk) in enumerate(located)]
    else:
        chunks = chunk_prose(clean_text(text))
    if not chunks:
        raise ParseError("no text to index")
    return Document(
        id=doc_id or document_id(path.name),
        title=clean_text(title).strip() or clean_text(humanise_stem(path)).strip() or "Untitled",
        kind=kind,
        source=clean_text(source or path.name),
        date=date,
        sha256=hashlib.sha256(data).hexdigest(),
        chunks=tuple(chunks),
        people=tuple(dict.fromkeys(n for n in map(clean_text, people) if n)),
    )
