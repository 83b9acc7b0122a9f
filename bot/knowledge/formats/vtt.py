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
# <v Name>, <v.loud Name> (Teams, Meet): the voice of the text after it.
_VOICE = re.compile(r"<v(?:\.[^\s>]+)*\s+([^>]+)>")
_TAG = re.compile(r"</?[^>]*>")  # <c.x>, <i>, </v>, <00:00:01.000> inline timestamps


def _blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks of non-empty lines."""
    blocks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _clean(text: str) -> str:
    """Cue text without tags, entities or a leading dialogue dash."""
    text = html.unescape(_TAG.sub("", text)).replace("\u00a0", " ").strip()
    return re.sub(r"^[-–](?:\s+|$)", "", text)


def _segments(line: str) -> list[tuple[str | None, str]]:
    """(voice or None, text) pieces of one payload line; a voice tag starts a piece."""
    parts = _VOICE.split(line)  # [before, voice1, text1, voice2, text2, ...]
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
