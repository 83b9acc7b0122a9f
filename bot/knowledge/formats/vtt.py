"""WebVTT captions and transcripts (Zoom, Teams, Meet): cues become speaker turns."""

from __future__ import annotations

import html
import re
from pathlib import Path

from bot.knowledge.chunking import Utterance
from bot.knowledge.formats.base import (
    ParseError,
    decode_text,
    document_date,
    drop_spans,
    make_document,
    merge_people,
)
from bot.knowledge.formats.transcript import match_turn
from bot.knowledge.store import Document

SUFFIXES = (".vtt",)

_TIME = r"(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}"
_TIMING = re.compile(rf"^\s*{_TIME}\s+-->\s+{_TIME}")
# Blocks that carry no speech: comments, styling, regions.
_SKIPPED_BLOCKS = re.compile(r"^(?:NOTE|STYLE|REGION)(?:\s|$)")
_SPACE = re.compile(r"\s")
# A decimal character reference: html.unescape converts its digits with int(), which raises
# ValueError past 4,300 digits, so long ones are shortened to one it maps the same way.
_DECIMAL_REF = re.compile(r"&#([0-9]+)")
_BEYOND_UNICODE = "1114112"  # U+10FFFF + 1: html.unescape makes it U+FFFD, as any larger one


def _blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks of non-empty lines."""
    blocks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _short_ref(ref: re.Match[str]) -> str:
    digits = ref[1].lstrip("0") or "0"
    return "&#" + (digits if len(digits) <= len(_BEYOND_UNICODE) else _BEYOND_UNICODE)


def _clean(text: str) -> str:
    """Cue text without tags (<c.x>, <i>, </v>, <00:00:01.000>), entities or a leading
    dialogue dash."""
    text = _DECIMAL_REF.sub(_short_ref, drop_spans(text, "<", ">"))
    text = html.unescape(text).replace("\u00a0", " ").strip()
    return re.sub(r"^[-–](?:\s+|$)", "", text)


def _voice_in(line: str, lo: int, hi: int) -> tuple[int, str] | None:
    """The first voice tag `<v[.classes] annotation` in line[lo:hi], a stretch without `>`
    that a `>` at `hi` ends: its start and annotation, as the old regex's group had it."""
    start = line.find("<v", lo, hi)
    while start != -1:
        space = start + 2
        if line.startswith(".", space):
            found = _SPACE.search(line, space + 1, hi)
            if found is None:
                return None  # no later "<v" in the stretch has a space after it either
            if found.start() == space + 1:  # "<v. ": a class needs a name
                start = line.find("<v", space + 1, hi)
                continue
            space = found.start()
        if space < hi and line[space].isspace():
            # Nothing after the space: no later tag in the stretch has room for a name.
            annotation = line[space + 1 : hi]
            return (start, annotation.lstrip() or annotation[-1]) if annotation else None
        start = line.find("<v", start + 1, hi)
    return None


def _split_voices(line: str) -> list[str]:
    r"""[before, voice1, text1, voice2, text2, ...] around the voice tags <v Name> and
    <v.loud Name> (Teams, Meet), as re.split(r"<v(?:\.[^\s>]+)*\s+([^>]+)>", line) gives,
    but in linear time: that pattern is exponential on `<v.a.a.a...` and quadratic on
    unclosed tags. A tag ends at the first `>` after it, so each stretch up to a `>` holds
    at most one."""
    parts: list[str] = []
    done = lo = 0
    while (hi := line.find(">", lo)) != -1:
        if tag := _voice_in(line, lo, hi):
            parts += [line[done : tag[0]], tag[1]]
            done = hi + 1
        lo = hi + 1
    parts.append(line[done:])
    return parts


def _segments(line: str) -> list[tuple[str | None, str]]:
    """(voice or None, text) pieces of one payload line; a voice tag starts a piece."""
    parts = _split_voices(line)  # [before, voice1, text1, voice2, text2, ...]
    pieces: list[tuple[str | None, str]] = [(None, parts[0])]
    pieces += [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]
    return [(voice, _clean(text)) for voice, text in pieces if voice or _clean(text)]


def _payload_turns(lines: list[str]) -> list[Utterance]:
    """The turns of one cue's text: a voice tag or `Name:` starts a turn, other lines
    continue the turn above (a cue without any speaker is narration)."""
    turns: list[Utterance] = []
    for voice, text in (piece for raw in lines for piece in _segments(raw)):
        if voice is not None:
            turns.append(Utterance(voice, text))
        elif turn := match_turn(text):
            turns.append(turn)
        elif turns:
            turns[-1] = Utterance(turns[-1].speaker, f"{turns[-1].text} {text}".strip())
        else:
            turns.append(Utterance("", text))
    return [t for t in turns if t.text]


def read_cues(text: str) -> tuple[str, list[Utterance]]:
    """The header's title and the spoken turns, consecutive cues of one speaker merged."""
    blocks = _blocks(text)
    if not blocks or not blocks[0][0].lstrip("\ufeff").startswith("WEBVTT"):
        raise ParseError("not a WebVTT file (no WEBVTT header)")
    title = blocks[0][0].lstrip("\ufeff")[len("WEBVTT") :].strip(" -\t")
    turns: list[Utterance] = []
    for block in blocks[1:]:
        if _SKIPPED_BLOCKS.match(block[0]):
            continue
        timing = next((i for i, line in enumerate(block) if _TIMING.match(line)), None)
        if timing is None or timing > 1:  # a cue is [identifier] timing payload
            continue
        for turn in _payload_turns(block[timing + 1 :]):
            if turns and turns[-1].speaker == turn.speaker:
                turns[-1] = Utterance(turn.speaker, f"{turns[-1].text} {turn.text}")
            else:
                turns.append(turn)
    return title, turns


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a WebVTT file into a transcript Document; its speakers are its people."""
    title, turns = read_cues(decode_text(data))
    speakers = dict.fromkeys(t.speaker for t in turns if t.speaker)
    return make_document(
        path,
        data,
        title=title,
        kind="transcript",
        date=document_date({}, path, [title]),
        people=merge_people((), speakers),
        turns=turns,
        doc_id=doc_id,
        source=source,
    )
