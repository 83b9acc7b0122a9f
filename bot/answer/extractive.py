"""Answers without a model: the passage sentences that answer the question, quoted.

The best-scoring sentences (bot/answer/scoring.py) are quoted with the sentence they
depend on ("Yes." with the question before it), adjacent ones as one excerpt in document
order, within one WhatsApp message, followed by their sources."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from bot.answer.scoring import Sentence, asks, score_sentences, short
from bot.answer.sentences import content_stems, split_sentences, stem
from bot.deadline import Deadline
from bot.models import Answer, Passage, Turn
from bot.texts import EXCERPTS_INTRO, MODEL_UNAVAILABLE, NOTHING_FOUND

logger = logging.getLogger(__name__)
__all__ = ["ExtractiveAnswerer", "content_stems", "select_sentences", "split_sentences", "stem"]

MIN_SENTENCES = 3
MAX_SENTENCES = 6
MAX_SENTENCE_CHARS = 300
MAX_EXCERPT_CHARS = 1000  # all quotes together: with intro and sources, one message
RELEVANCE_FLOOR = 0.3

# Openings that only make sense with the sentence before: "That matches...", "It is...",
# "Yes.", "So we...". ("This handbook explains..." stands on its own.)
_DEPENDENT_RE = re.compile(
    r"^(?:(?:that|this|these|those)(?:'s|,|\s+(?:is|was|are|were|will|would|could|should"
    r"|can|may|might|must|matters|matches|works|means|makes|sounds|seems|depends|one)\b)"
    r"|(?:it|they|them|their|then|so|and|but|also|yes|yeah|no|agreed|he|she|his|her|both"
    r"|there)\b)",
    re.IGNORECASE,
)
_CONNECTIVE_RE = re.compile(r"^(?:so|and|but|also|then)\b", re.IGNORECASE)


def _clip(text: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _needs_context(sentence: Sentence, before: Sentence | None) -> bool:
    """A sentence that only makes sense after the one before it (in its turn or paragraph,
    or the turn before: "And the restricted grants?" "The foundation grant...")."""
    if before is None or before.unit.heading or short(before):
        return False  # "Mm." or "Right." gives no context
    if before.unit.line != sentence.unit.line and not (before.by_person and sentence.by_person):
        return False
    body = sentence.unit.body
    if before.unit.line == sentence.unit.line:
        return bool(_DEPENDENT_RE.match(body)) or short(sentence)
    # A new turn leans on the one before when it answers it ("Yes.", "That matches..."),
    # not when it goes on with the speaker's own thought ("So we go into...").
    responds = _DEPENDENT_RE.match(body) and not _CONNECTIVE_RE.match(body)
    return asks(before) or bool(responds) or short(sentence)


def select_sentences(
    question: str, passages: list[Passage], turns: Sequence[Turn] = (), limit: int = 0
) -> list[tuple[str, str]]:
    """(excerpt, source) pairs, best first: runs of adjacent sentences of one passage."""
    limit = limit or MAX_SENTENCES
    by_passage, scores = score_sentences(question, passages, turns)
    at = {s.key: s for kept in by_passage for s in kept}
    candidates = [s for s in at.values() if not s.unit.heading]
    if not candidates:
        return []
    ranked = sorted(candidates, key=lambda s: (-scores[s.key], s.key))
    best = scores[ranked[0].key]
    chosen: dict[tuple[int, int], float] = {}
    used = 0
    for sentence in ranked:
        score = scores[sentence.key]
        if len(chosen) >= limit or score <= 0:
            break
        if score < RELEVANCE_FLOOR * best and len(chosen) >= MIN_SENTENCES:
            break
        group = [sentence]
        before = at.get((sentence.rank, sentence.position - 1))
        if _needs_context(sentence, before):
            group.insert(0, before)  # keep the pair: the question and its reply, say
        new = [s for s in group if s.key not in chosen]
        cost = sum(len(_clip(s.text)) for s in new)
        if not new or used + cost > MAX_EXCERPT_CHARS:
            continue
        used += cost
        for s in new:
            chosen[s.key] = max(score, scores[s.key])
    if not chosen:
        # Nothing matched: retrieval still ranked these passages, so their openings lead.
        for sentence in sorted(candidates, key=lambda s: s.key)[:MIN_SENTENCES]:
            chosen[sentence.key] = 0.0
    return _excerpts(chosen, at)


def _excerpts(
    chosen: dict[tuple[int, int], float], at: dict[tuple[int, int], Sentence]
) -> list[tuple[str, str]]:
    """Adjacent chosen sentences of one passage become one excerpt, speakers named once."""
    runs: list[list[tuple[int, int]]] = []
    for key in sorted(chosen):
        if runs and runs[-1][-1] == (key[0], key[1] - 1) and _joins(at[runs[-1][-1]], at[key]):
            runs[-1].append(key)
        else:
            runs.append([key])
    runs.sort(key=lambda run: (-max(chosen[k] for k in run), run[0]))
    excerpts = []
    for run in runs:
        parts, speaker = [], None
        for key in run:
            unit = at[key].unit
            text = unit.text if unit.speaker != speaker else unit.body
            parts.append(_clip(text))
            speaker = unit.speaker
        excerpts.append((" ".join(parts), at[run[0]].source))
    return excerpts


def _joins(before: Sentence, after: Sentence) -> bool:
    """One excerpt: sentences of one line, or speaker turns (their names mark the change)."""
    return before.unit.line == after.unit.line or (before.by_person and after.by_person)


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
