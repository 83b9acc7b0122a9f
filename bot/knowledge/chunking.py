"""Cut parsed documents into retrievable chunks: whole speaker turns, or whole paragraphs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.knowledge.store import Chunk

# Transcripts and prose alike. Retrieval is judged by what fits a context budget in which a
# passage costs at least 600 characters (benchmarks/retrieval_quality.py): chunks of up to
# 600 characters give the most distinct places per budget; on QMSum, 1,200-character chunks
# answered 0.49 of the questions and 600-character ones 0.50 before query changes.
MAX_CHARS = 600

# A sentence ends with . ! ? or … (optionally followed by closing quotes/brackets) and a space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Utterance:
    """One transcript turn; an empty speaker marks narration (headers, section titles)."""

    speaker: str
    text: str

    def render(self) -> str:
        """The line as stored in a chunk: `Speaker: text`, or the bare text for narration."""
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


def split_sentences(text: str) -> list[str]:
    """Split text after sentence-ending punctuation; never returns empty pieces."""
    return [piece for piece in _SENTENCE_END.split(text.strip()) if piece.strip()]


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long sentence at whitespace (or anywhere, for unbroken text)."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _pack(parts: Iterable[str], limit: int, sep: str) -> list[str]:
    """Greedily join parts with `sep` into pieces of at most `limit` characters."""
    pieces: list[str] = []
    current = ""
    for part in parts:
        for unit in [part] if len(part) <= limit else _hard_split(part, limit):
            if current and len(current) + len(sep) + len(unit) <= limit:
                current = f"{current}{sep}{unit}"
            else:
                if current:
                    pieces.append(current)
                current = unit
    if current:
        pieces.append(current)
    return pieces


def split_long_text(text: str, limit: int) -> list[str]:
    """Split text longer than `limit` at sentence boundaries into pieces of at most `limit`."""
    if len(text) <= limit:
        return [text]
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:  # lists and multi-line turns: keep their line structure
        return _pack([u for line in lines for u in split_long_text(line, limit)], limit, "\n")
    return _pack(split_sentences(text), limit, " ")


def _speakers(turns: Sequence[Utterance]) -> tuple[str, ...]:
    """Distinct speakers in order of first appearance."""
    return tuple(dict.fromkeys(t.speaker for t in turns if t.speaker))


def _fit_turns(turns: Iterable[Utterance], limit: int) -> Iterable[Utterance]:
    """Yield turns, splitting only those whose rendered line exceeds `limit`."""
    for turn in turns:
        if len(turn.render()) <= limit:
            yield turn
            continue
        # The speaker prefix is repeated on every piece, so leave room for it.
        prefix = len(turn.render()) - len(turn.text)
        if prefix > limit // 2:
            # No name is this long (a WebVTT voice or a JSON speaker can be anything), and
            # repeating it on pieces of what little room is left would grow the chunks with
            # len(speaker) x len(text): 60 KB of input made 400 MB of chunks.
            turn, prefix = Utterance("", turn.render()), 0
        for piece in split_long_text(turn.text, max(1, limit - prefix)):
            yield Utterance(turn.speaker, piece)


def chunk_transcript(turns: Sequence[Utterance], max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Group consecutive turns into chunks of at most `max_chars`, never splitting a turn
    unless that turn alone is longer than `max_chars`."""
    chunks: list[Chunk] = []
    group: list[Utterance] = []
    size = 0
    for turn in _fit_turns((t for t in turns if t.text.strip()), max_chars):
        line = len(turn.render())
        if group and size + 1 + line > max_chars:
            chunks.append(_transcript_chunk(len(chunks), group))
            group, size = [], 0
        size = line if not group else size + 1 + line
        group.append(turn)
    if group:
        chunks.append(_transcript_chunk(len(chunks), group))
    return chunks


def _transcript_chunk(seq: int, group: Sequence[Utterance]) -> Chunk:
    return Chunk(seq=seq, text="\n".join(t.render() for t in group), speakers=_speakers(group))


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, trimmed, empty ones dropped."""
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def chunk_prose(text: str, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Pack whole paragraphs into chunks of at most `max_chars`; over-long paragraphs are
    split at sentence boundaries. The store indexes the document title beside each chunk,
    so title words match every chunk without repeating the title in the text."""
    parts: list[str] = []
    for paragraph in _attach_headings(split_paragraphs(text), max_chars):
        parts.extend(split_long_text(paragraph, max_chars))
    return [Chunk(seq=i, text=t) for i, t in enumerate(_pack(parts, max_chars, "\n\n"))]


def _is_heading(paragraph: str) -> bool:
    """A short single line without final punctuation: a section title."""
    return "\n" not in paragraph and len(paragraph) <= 80 and paragraph[-1:] not in ".!?:;,"


def _attach_headings(paragraphs: list[str], limit: int) -> list[str]:
    """Join each heading to the paragraph after it, so no chunk ends with a dangling title."""
    out: list[str] = []
    pending = ""
    for paragraph in paragraphs:
        if _is_heading(paragraph):
            pending = f"{pending}\n{paragraph}" if pending else paragraph
            continue
        if pending and len(pending) + 1 + len(paragraph) <= limit:
            out.append(f"{pending}\n{paragraph}")
        else:
            out.extend(p for p in (pending, paragraph) if p)
        pending = ""
    if pending:
        out.append(pending)
    return out
