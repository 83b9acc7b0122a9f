"""Answers without a model: the passage sentences that best match the question."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.deadline import Deadline
from bot.followup import search_query
from bot.models import Answer, Passage, Turn
from bot.text import STOPWORDS
from bot.texts import EXCERPTS_INTRO, MODEL_UNAVAILABLE, NOTHING_FOUND

logger = logging.getLogger(__name__)

MIN_SENTENCES = 3
MAX_SENTENCES = 5
MAX_SENTENCE_CHARS = 300
STEM_CHARS = 5
LABEL_BONUS = 3.0
RANK_DECAY = 0.5
WRAPPED_LINE_CHARS = 60
RELEVANCE_FLOOR = 0.3
BORROWED_WEIGHT = 0.7


_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+")
# "Alice: text" or "Dr. Bob Smith: text" at the start of a transcript line.
_SPEAKER_RE = re.compile(r"^\s*([^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})\s*:\s+(\S.*)$")


# "Notes by: Lena" opens a line of its own even though "by" is not capitalised.
_LABEL_RE = re.compile(r"^[^\W\d_][\w ]{0,24}:\s")


def _speaker(line: str) -> tuple[str, str] | None:
    """("Amara Okafor", "text") for a `Name: text` line; names are capitalised words."""
    match = _SPEAKER_RE.match(line)
    if match is None or not all(word[0].isupper() for word in match.group(1).split()):
        return None
    return match.group(1).strip(), match.group(2).strip()


_BULLET_RE = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")
_SUFFIXES = ("ing", "ed", "es", "s")


def stem(word: str) -> str:
    """Light stemming: lowercase, drop a common suffix, keep a short prefix."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    # Prefix truncation is crude but language-agnostic: "attended"/"Attendees" → "atten".
    return word[:STEM_CHARS]


def content_stems(text: str) -> set[str]:
    """The stems of the words in `text` that carry meaning (no stopwords, no 1-letter words)."""
    words = (w for w in _WORD_RE.findall(text) if len(w) > 1 or w.isdigit())
    return {stem(w) for w in words if w.lower() not in STOPWORDS}


@dataclass(frozen=True)
class _Sentence:
    text: str
    stems: frozenset[str]
    label: frozenset[str]  # stems of a "Label: text" prefix (speaker, "Attendees", ...)
    passage_rank: int
    position: int
    source: str


def _clip(text: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _continues(previous: str, raw: str) -> bool:
    """True when `raw` carries on the line before it (hard-wrapped prose, indented items)."""
    if not previous or _BULLET_RE.match(raw) or _speaker(raw) or _LABEL_RE.match(raw):
        return False
    stripped = raw.lstrip()
    # Short lines without a full stop are headings; long ones were wrapped by an editor.
    return raw[:1].isspace() or stripped[:1].islower() or len(previous) >= WRAPPED_LINE_CHARS


def _lines(text: str) -> list[str]:
    """Logical lines: wrapped prose rejoined, list items after a 'Label:' line kept with it."""
    lines: list[str] = []
    previous = ""  # the raw line before, "" after a blank line
    intro = False
    for raw in text.splitlines():
        line = _BULLET_RE.sub("", raw).strip()
        if not line:
            previous, intro = "", False
            continue
        if _continues(previous, raw):
            lines[-1] += " " + line
            intro = False
        elif intro and _BULLET_RE.match(raw):
            # "We decided to stop Germany work:" says little without the list that follows.
            lines[-1] += ("" if lines[-1].endswith(":") else ";") + " " + line
        else:
            lines.append(line)
            intro = line.endswith(":")
        previous = raw.rstrip()
    return lines


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage; a `Name: text` line passes its speaker to each sentence."""
    sentences: list[str] = []
    for line in _lines(text):
        speaker, line = _speaker(line) or ("", line)
        for part in _SENTENCE_END_RE.split(line):
            part = part.strip()
            if len(_WORD_RE.findall(part)) == 0:
                continue
            sentences.append(f"{speaker}: {part}" if speaker else part)
    return sentences


def _sentences(passages: list[Passage]) -> list[_Sentence]:
    found: list[_Sentence] = []
    seen: set[str] = set()
    for rank, passage in enumerate(passages):
        # A passage's title line repeats its source label: no excerpt in itself.
        seen.add(" ".join((passage.title or "").lower().split()))
        for position, text in enumerate(split_sentences(passage.text or "")):
            key = " ".join(text.lower().split())
            if key in seen:
                continue
            seen.add(key)
            source = " ".join((passage.source or "").split()) or "knowledge base"
            label = text.split(": ", 1)[0] if ": " in text else ""
            label = label if len(label.split()) <= 3 else ""  # a name or a heading, not prose
            found.append(
                _Sentence(
                    text,
                    frozenset(content_stems(text)),
                    frozenset(content_stems(label)),
                    rank,
                    position,
                    source,
                )
            )
    return found


def _query_weights(question: str, turns: Sequence[Turn]) -> dict[str, float]:
    """Question stems weigh 1; a follow-up borrows its topic from earlier questions."""
    weights = dict.fromkeys(content_stems(question), 1.0)
    topic = search_query(question, list(turns))  # the same rule retrieval follows
    for s in content_stems(topic[len(question) :]):
        weights.setdefault(s, BORROWED_WEIGHT)
    return weights


def select_sentences(
    question: str, passages: list[Passage], turns: Sequence[Turn] = (), limit: int = MAX_SENTENCES
) -> list[tuple[str, str]]:
    """(sentence, source) pairs, most relevant first; padded from the top passages."""
    sentences = _sentences(passages)
    if not sentences:
        return []
    weights = _query_weights(question, turns)
    # Rare words in the retrieved text say more than words every sentence shares.
    counts: dict[str, int] = {}
    for sentence in sentences:
        for s in sentence.stems & weights.keys():
            counts[s] = counts.get(s, 0) + 1
    total = len(sentences)
    # How much of the question each passage (title included) covers: an "Attendees:" line
    # in a passage that never mentions the meeting asked about is about another meeting.
    cover = [
        sum(weights[s] for s in content_stems(f"{p.title}\n{p.text}") & weights.keys())
        / (sum(weights.values()) or 1.0)
        for p in passages
    ]

    def score(sentence: _Sentence) -> float:
        matched = sentence.stems & weights.keys()
        # A line labelled with the question's word ("Attendees:", "Lars:") is about it.
        overlap = sum(
            weights[s]
            * (1.0 + math.log(total / counts[s]))
            * (LABEL_BONUS if s in sentence.label else 1.0)
            for s in matched
        )
        # Retrieval ranked the passages: equal matches in a better passage come first.
        rank = sentence.passage_rank
        return overlap * cover[rank] / (1.0 + RANK_DECAY * rank)

    scored = [(score(s), s) for s in sentences]
    best = max(score for score, _ in scored)
    # Weak matches (a shared common word) only dilute a good answer.
    relevant = [pair for pair in scored if pair[0] > 0 and pair[0] >= RELEVANCE_FLOOR * best]
    relevant.sort(key=lambda pair: (-pair[0], pair[1].passage_rank, pair[1].position))
    chosen = [s for _, s in relevant[:limit]]
    if len(chosen) < MIN_SENTENCES:
        # Retrieval already ranked the passages: their opening sentences are the next best.
        for sentence in sorted(sentences, key=lambda s: (s.passage_rank, s.position)):
            if len(chosen) >= MIN_SENTENCES:
                break
            if sentence not in chosen:
                chosen.append(sentence)
    return [(_clip(s.text), s.source) for s in chosen]


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class ExtractiveAnswerer:
    """Quotes the most relevant passage sentences with their sources; never raises."""

    name = "extractive"

    def answer(
        self,
        question: str,
        passages: list[Passage],
        turns: list[Turn],
        deadline: Deadline | None = None,
        reason: str = "",
    ) -> Answer:
        """Build an excerpt answer; `reason` marks it as the fallback for an unavailable model."""
        try:
            return self._answer(
                str(question or ""), list(passages or ()), list(turns or ()), reason
            )
        except Exception:  # a fallback that raises would leave the user with nothing
            logger.exception("extractive answer failed")
            return Answer(NOTHING_FOUND, backend="extractive", fallback_reason=reason)

    def _answer(
        self, question: str, passages: list[Passage], turns: list[Turn], reason: str
    ) -> Answer:
        picked = select_sentences(question, passages, turns)
        if not picked:
            return Answer(NOTHING_FOUND, backend="extractive", fallback_reason=reason)
        sources = _distinct([source for _, source in picked])
        lines = [MODEL_UNAVAILABLE] if reason else []
        lines.append(EXCERPTS_INTRO)
        lines.extend(f"• {text}" for text, _ in picked)
        lines.append("")
        lines.append("Sources: " + "; ".join(sources))
        return Answer(
            "\n".join(lines), sources=tuple(sources), backend="extractive", fallback_reason=reason
        )
