"""WhatsApp chat exports (Android and iOS `.txt`): messages become turns by sender."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge.chunking import Utterance
from bot.knowledge.formats.base import ParseError, decode_text, humanise_stem, make_document
from bot.knowledge.store import Document

SUFFIXES = (".txt",)

_SPACE = r"[ \u00a0\u202f]"  # exports put a (narrow) no-break space before am/pm
_DATE = r"(?P<date>\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4})"
_TIME = rf"(?P<time>\d{{1,2}}[:.]\d{{2}}(?:[:.]\d{{2}})?(?:{_SPACE}?[AaPp]\.?{_SPACE}?[Mm]\.?)?)"
_ANDROID = re.compile(rf"^{_DATE},?{_SPACE}{_TIME}{_SPACE}[-–]{_SPACE}(?P<rest>.*)$")
_IOS = re.compile(rf"^\[{_DATE},?{_SPACE}{_TIME}\]{_SPACE}(?P<rest>.*)$")
_SENDER = re.compile(r"^(?P<name>[^:]{1,80}?): (?P<text>.*)$", re.S)
_MARK_CHARS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_MARKS = re.compile(f"[{_MARK_CHARS}]")  # direction marks iOS sprinkles into exports
# Whole messages that are placeholders or notices, not anything anyone wrote.
_NOT_SPEECH = re.compile(
    r"^(?:<media omitted>|<attached: [^>]*>|(?:image|video|audio|sticker|gif|document"
    r"|contact card|media) omitted|\S+ \(file attached\)|this message was deleted\.?"
    r"|you deleted this message\.?|null|missed (?:voice|video) call|waiting for this"
    r" message\..*|messages and calls are end-to-end encrypted\..*|messages to this group"
    r" are now secured with end-to-end encryption\..*)$",
    re.I | re.S,
)
# `(?<!\s)`: a match starts where a run of spaces starts, never inside one, so a long run
# that the marker does not follow is scanned once rather than from each of its spaces.
_EDITED = re.compile(r"(?<!\s)\s*<this message was edited>\s*$", re.I)
_SNIFF_LINES = 20


@dataclass
class Message:
    """One chat message; `system` marks notices that have no sender's words."""

    day: dt.date | None
    sender: str
    text: str
    system: bool = False


def _header(line: str) -> re.Match[str] | None:
    return _IOS.match(line) or _ANDROID.match(line)


def sniff(path: Path, data: bytes) -> bool:
    """Registry hook: does this text file start like a WhatsApp export?"""
    try:
        head = decode_text(data[:8192])
    except ParseError:
        return False
    lines = [ln.lstrip(_MARK_CHARS).strip() for ln in head.split("\n")]
    lines = [ln for ln in lines if ln][:_SNIFF_LINES]
    headers = sum(1 for ln in lines if _header(ln))
    return bool(lines) and _header(lines[0]) is not None and headers >= min(2, len(lines))


def _day_first(dates: list[str]) -> bool:
    """Exports write dates in the phone's locale: month first only when a day says so."""
    pairs = [tuple(int(p) for p in re.split(r"[/.\-]", d)[:2]) for d in dates]
    return not any(b > 12 and a <= 12 for a, b in pairs)


def _to_date(value: str, day_first: bool) -> dt.date | None:
    a, b, year = (int(p) for p in re.split(r"[/.\-]", value))
    day, month = (a, b) if day_first else (b, a)
    try:
        return dt.date(year + 2000 if year < 100 else year, month, day)
    except ValueError:
        return None


def _message(day: dt.date | None, rest: str) -> Message:
    """A message from the text after the timestamp: `Name: text`, or a system line."""
    m = _SENDER.match(rest)
    if not m or any(q in m["name"] for q in '"“”'):
        return Message(day, "", rest, system=True)  # "Tom added Ann", "You left"
    text = _MARKS.sub("", m["text"])
    # iOS starts generated text ("image omitted", "Tom added Ann") with U+200E.
    system = m["text"].startswith("\u200e") or bool(_NOT_SPEECH.match(text.strip()))
    return Message(day, _MARKS.sub("", m["name"]).strip(" ~\u00a0\u202f"), text, system)


def read_messages(text: str) -> Iterator[Message]:
    """Messages in order; lines without a timestamp continue the message above."""
    lines = [line.lstrip(_MARK_CHARS) for line in text.split("\n")]
    headers = [m for m in map(_header, lines) if m]
    if not headers:
        raise ParseError("no WhatsApp messages found")
    day_first = _day_first([m["date"] for m in headers])
    current: Message | None = None
    for line in lines:
        m = _header(line)
        if m is None:
            if current is not None:
                current.text = f"{current.text}\n{_MARKS.sub('', line).rstrip()}"
            continue
        if current is not None:
            yield current
        current = _message(_to_date(m["date"], day_first), m["rest"].strip(" "))
    if current is not None:
        yield current


def chat_turns(messages: list[Message]) -> list[Utterance]:
    """Turns by sender, a day line when the date changes, consecutive messages merged."""
    turns: list[Utterance] = []
    day: dt.date | None = None
    for msg in messages:
        text = _EDITED.sub("", msg.text).strip()
        if msg.system or not text:
            continue
        if msg.day and msg.day != day:
            day = msg.day
            turns.append(Utterance("", day.isoformat()))
        if turns and turns[-1].speaker == msg.sender:
            turns[-1] = Utterance(msg.sender, f"{turns[-1].text}\n{text}")
        else:
            turns.append(Utterance(msg.sender, text))
    return turns


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a chat export: senders are the people, the first message's day the date."""
    messages = list(read_messages(decode_text(data)))
    spoken = [m for m in messages if not m.system and m.text.strip()]
    first = next((m.day for m in spoken if m.day), None)
    # iOS names every export "_chat.txt"; its encryption notice is "sent" by the group.
    group = next((m.sender for m in messages if m.system and m.sender), "")
    title = humanise_stem(path)
    if path.stem.lower().strip("_") in {"chat", ""}:
        title = f"WhatsApp chat with {group}" if group else "WhatsApp chat"
    return make_document(
        path,
        data,
        title=title,
        kind="chat",
        date=first.isoformat() if first else "",
        people=tuple(dict.fromkeys(m.sender for m in spoken)),
        turns=chat_turns(messages),
        doc_id=doc_id,
        source=source,
    )
