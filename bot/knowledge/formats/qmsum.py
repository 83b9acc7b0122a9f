"""QMSum-style JSON transcripts: {"meeting_transcripts": [{"speaker", "content"}, ...]}."""

from __future__ import annotations

import json
from pathlib import Path

from bot.knowledge.chunking import Utterance
from bot.knowledge.formats.base import ParseError, decode_text, make_document, parse_date
from bot.knowledge.store import Document

SUFFIXES = (".json",)


def sniff(path: Path, data: bytes) -> bool:
    """Registry hook: does this JSON file carry QMSum meeting transcripts?"""
    return b'"meeting_transcripts"' in data


def read_turns(data: bytes) -> list[Utterance]:
    """The transcript turns; only the transcript is read, never the benchmark's answers."""
    try:
        payload = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at line {exc.lineno}") from exc
    except (ValueError, RecursionError) as exc:  # a 4,300+ digit number; nesting too deep
        raise ParseError(f"unreadable JSON: {exc}") from exc
    rows = payload.get("meeting_transcripts") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise ParseError("expected an object with a 'meeting_transcripts' list")
    turns: list[Utterance] = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("content"), str):
            raise ParseError("each transcript turn needs 'speaker' and 'content' strings")
        # Content is kept verbatim (QMSum's tokenised spacing included) apart from
        # whitespace, so evaluations can find the annotated turns in retrieved text.
        text = " ".join(row["content"].split())
        if text:
            turns.append(Utterance(str(row.get("speaker") or "").strip(), text))
    return turns


def parse(
    path: Path, data: bytes, *, doc_id: str | None = None, source: str | None = None
) -> Document:
    """Parse a QMSum meeting file into a transcript Document named after the file."""
    turns = read_turns(data)
    return make_document(
        path,
        data,
        title=path.stem,
        kind="transcript",
        date=parse_date(path.stem),
        people=tuple(dict.fromkeys(t.speaker for t in turns if t.speaker)),
        turns=turns,
        doc_id=doc_id,
        source=source,
    )
