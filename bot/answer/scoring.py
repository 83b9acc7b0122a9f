"""How well each retrieved sentence answers a question: its words, its place, its kind.

A sentence scores by the question's topic words it holds (rare ones weigh more), plus what
it inherits from its place (the heading above it, the sentence it carries on, the question
it replies to), doubled when it holds the kind of answer asked for (a name for "who", a
date for "when", an amount for "how much"...)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from bot.answer.kinds import DECISION, REASON, carries, full_names, question_kinds, topic_text
from bot.answer.sentences import WORD_RE, Unit, content_stems, stems_of, units, words
from bot.followup import search_query
from bot.models import Passage, Turn

LABEL_BONUS = 3.0  # "Attendees:" answers "who attended?" more than a passing mention
SPEAKER_BONUS = 1.0  # "what did Tom say about X": Tom's sentences about X count double
RANK_DECAY = 0.05  # retrieval order only breaks near-ties: the passage cover says more
BORROWED_WEIGHT = 0.7
KIND_BONUS = 1.0  # holding the kind of answer asked for doubles a sentence's score
HEADING_SHARE = 1.0  # a section's sentences are about what its heading names
NEXT_SHARE = 0.5  # a sentence carries on the one before it in its turn or paragraph
REPLY_SHARE = 0.7  # the first sentence after a question answers it
SHORT_WORDS = 3  # "Yes." or "Agreed." says little on its own
SHORT_FACTOR = 0.5
SECTION_KINDS = (REASON, DECISION)  # kinds a heading gives the sentences below it


# A named tuple, as Unit: one is built for every retrieved sentence.
class Sentence(NamedTuple):
    """One retrieved sentence with what scoring needs to know about it."""

    unit: Unit
    stems: frozenset[str]  # of the whole text, label included
    body_stems: frozenset[str]  # of what the speaker said
    label: frozenset[str]  # stems of a "Label: text" prefix (speaker, "Attendees", ...)
    rank: int  # of its passage in retrieval order
    position: int  # among its passage's units (not `index`: tuple has one)
    source: str
    by_person: bool  # a transcript turn or a full name's line: answers "who said...?"
    word_count: int  # of the body for a person's turn, else of the whole text (see short)

    @property
    def key(self) -> tuple[int, int]:
        return self.rank, self.position

    @property
    def text(self) -> str:
        return self.unit.text


def short(sentence: Sentence) -> bool:
    """ "Yes." or "Mm." (a label line such as "Owner: Tom Fletcher" counts its label)."""
    return sentence.word_count < SHORT_WORDS


def asks(sentence: Sentence) -> bool:
    """A question ("And the restricted grants?"): the next speaker's words answer it."""
    return sentence.unit.body.rstrip().endswith("?")


class Parsed(NamedTuple):
    """What an answer needs of one passage whatever the question: its sentences, each
    with the key that tells a quote of it in another passage, and the passage's stems."""

    sentences: tuple[tuple[str, Sentence], ...]  # rank 0, source "": set per answer
    stems: frozenset[str]  # content stems of the title and text: the passage's cover


# A message's extractive answer parses its ten passages, and a team's questions bring back
# the same passages again and again: parsed once per process, not once per message (half
# of the answer's CPU, issue 19). Keyed by everything the parse reads. A 600-character
# transcript passage holds about 17 KB parsed, one of short chat lines up to about 50 KB:
# 9-27 MB per worker at most.
PARSED_PASSAGES = 512


@lru_cache(maxsize=PARSED_PASSAGES)
def parse(text: str, title: str, speakers: tuple[str, ...]) -> Parsed:
    """A passage's sentences (headings included) and stems, for any question."""
    known = set(speakers)
    sentences = tuple(
        (" ".join(unit.text.lower().split()), _sentence(unit, index, known))
        for index, unit in enumerate(units(text, title))
    )
    return Parsed(sentences, frozenset(content_stems(f"{title}\n{text}")))


def _parsed(passage: Passage) -> Parsed:
    return parse(passage.text or "", passage.title or "", tuple(passage.speakers or ()))


def passage_sentences(passages: list[Passage]) -> list[list[Sentence]]:
    """Each passage's units in order; a sentence quoted by an earlier passage is dropped."""
    seen: set[str] = set()
    found: list[list[Sentence]] = []
    for rank, passage in enumerate(passages):
        source = " ".join((passage.source or "").split()) or "knowledge base"
        kept: list[Sentence] = []
        for key, sentence in _parsed(passage).sentences:
            if not sentence.unit.heading:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(sentence._replace(rank=rank, source=source))
        found.append(kept)
    return found


def _sentence(unit: Unit, index: int, speakers: set[str]) -> Sentence:
    by_person = bool(unit.speaker) and (unit.speaker in speakers or len(unit.speaker.split()) > 1)
    # A label names the line's topic ("Attendees:"); a date label is no topic word.
    label = _label_stems(unit.label)
    body_words = words(unit.body)
    body = frozenset(stems_of(body_words))
    text = unit.text
    prefix = text[: len(text) - len(unit.body)]
    if text.endswith(unit.body) and not WORD_RE.match(prefix[-1:]):
        # "Speaker: body": no word spans the prefix's end, so the text's words are the
        # prefix's then the body's; the body is not split and stemmed twice.
        prefix_count, prefix_stems = _prefix_stems(prefix)
        text_count = prefix_count + len(body_words)
        stems = body | prefix_stems if prefix_count else body
    else:
        text_words = words(text)
        text_count, stems = len(text_words), frozenset(stems_of(text_words))
    count = len(body_words) if by_person else text_count
    return Sentence(unit, stems, body, label, 0, index, "", by_person, count)


# Labels and "Speaker: " prefixes are a small vocabulary (the team's names, "Attendees"), and
# every turn of a speaker repeats theirs: stemmed once, not per sentence. Pure, so bounded
# caches keyed by the exact string are right across requests and knowledge changes.
@lru_cache(maxsize=4096)
def _label_stems(label: str) -> frozenset[str]:
    """A label's content stems, less digits (a date label is no topic word)."""
    return frozenset(w for w in content_stems(label) if not w.isdigit())


@lru_cache(maxsize=4096)
def _prefix_stems(prefix: str) -> tuple[int, frozenset[str]]:
    """How many words a sentence's "Speaker: " prefix has, and their content stems."""
    found = words(prefix)
    return len(found), frozenset(stems_of(found))


def query_weights(question: str, turns: Sequence[Turn]) -> dict[str, float]:
    """Question topic stems weigh 1; a follow-up borrows its topic from earlier questions."""
    weights = dict.fromkeys(content_stems(topic_text(question)), 1.0)
    topic = search_query(question, list(turns))  # the same rule retrieval follows
    for s in content_stems(topic_text(topic[len(question) :])):
        weights.setdefault(s, BORROWED_WEIGHT)
    return weights


class Scorer:
    """How well each sentence answers one question, given all the retrieved sentences."""

    def __init__(
        self,
        question: str,
        turns: Sequence[Turn],
        passages: list[Passage],
        sentences: list[Sentence],
    ) -> None:
        self.question = question
        self.weights = weights = query_weights(question, turns)
        self.kinds = question_kinds(question)
        self._sections: dict[tuple[str, str], bool] = {}
        total = sum(weights.values()) or 1.0
        # How much of the question each passage (title included) covers: an "Attendees:"
        # line in a passage that never names the meeting asked about is about another one.
        self.cover = [
            sum(weights[s] for s in _parsed(p).stems & weights.keys()) / total for p in passages
        ]
        # Rare words in the retrieved text say more than words every sentence shares; a
        # word only a heading holds is as rare as a word can be.
        counts = dict.fromkeys(weights, 0)
        for sentence in sentences:
            for s in sentence.stems & weights.keys():
                counts[s] += 1
        n = len(sentences) + 1
        self.idf = {s: 1.0 + math.log(n / (count + 1)) for s, count in counts.items()}
        # Names from speakers and labelled lines ("Attendees: Amara Okafor, ..."): a "who"
        # answer names one of them.
        self.people = {w for p in passages for speaker in p.speakers or () for w in speaker.split()}
        for sentence in sentences:
            if sentence.by_person:
                self.people.update(sentence.unit.speaker.split())
            elif sentence.unit.label:
                self.people.update(full_names(sentence.unit.body))

    def own(self, sentence: Sentence) -> float:
        """The question words a sentence holds. A label that names the topic ("Attendees:")
        counts more; a speaker the question names ("what did Tom say...") lifts what they
        said about the topic, not everything they said."""
        if sentence.by_person:
            named = bool(sentence.label & self.weights.keys())
            return self._match(sentence.body_stems) * (1.0 + SPEAKER_BONUS * named)
        return self._match(sentence.stems, sentence.label)

    def _match(self, stems: frozenset[str], label: frozenset[str] = frozenset()) -> float:
        return sum(
            self.weights[s] * self.idf[s] * (LABEL_BONUS if s in label else 1.0)
            for s in stems & self.weights.keys()
        )

    def passage(self, sentences: list[Sentence]) -> dict[tuple[int, int], float]:
        """Scores of a passage's sentences (by key); headings only lend context."""
        scores: dict[tuple[int, int], float] = {}
        heading, section, title = 0.0, "", False
        previous: tuple[Sentence, float] | None = None
        for sentence in sentences:
            own = self.own(sentence)
            if sentence.unit.heading:
                heading, section, title = own, sentence.unit.text, sentence.unit.title
                previous = None
                continue
            carried = self._carries(sentence, section)
            context = HEADING_SHARE * heading if self._under(sentence, carried, title) else 0.0
            if previous is not None:
                before, before_own = previous
                if before.unit.line == sentence.unit.line:
                    context = max(context, NEXT_SHARE * before_own)
                elif asks(before) and before.unit.speaker != sentence.unit.speaker:
                    context = max(context, REPLY_SHARE * before_own)
            score = (own + context) * (1.0 + KIND_BONUS * carried)
            score *= SHORT_FACTOR if short(sentence) else 1.0
            scores[sentence.key] = (
                score * self.cover[sentence.rank] / (1.0 + RANK_DECAY * sentence.rank)
            )
            previous = sentence, own
        return scores

    def _under(self, sentence: Sentence, carried: bool, title: bool) -> bool:
        """Whether a sentence takes its heading's words: prose does; a speaker's turn is
        about what was said before it; a "Date:" line under the document's title only
        when the question wants what it holds (a date, a name, a place)."""
        if sentence.by_person:
            return False
        return carried if title and sentence.unit.label else True

    def _carries(self, sentence: Sentence, section: str) -> bool:
        """Holds the kind of answer asked for; under "Decisions" or "Why we..." every
        sentence gives a decision or a reason."""
        text, by_person = sentence.unit.text, sentence.by_person
        return any(
            carries(kind, text, by_person, self.question, self.people)
            or (kind in SECTION_KINDS and self._section_carries(kind, section))
            for kind in self.kinds
        )

    def _section_carries(self, kind: str, section: str) -> bool:
        """Whether a heading holds this kind; asked once per heading, not per sentence."""
        key = kind, section
        if key not in self._sections:
            self._sections[key] = carries(kind, section, False, "", set())
        return self._sections[key]


def score_sentences(
    question: str, passages: list[Passage], turns: Sequence[Turn]
) -> tuple[list[list[Sentence]], dict[tuple[int, int], float]]:
    """The passages' sentences (headings included) and the score of each non-heading one."""
    by_passage = passage_sentences(passages)
    candidates = [s for kept in by_passage for s in kept if not s.unit.heading]
    scorer = Scorer(question, turns, passages, candidates)
    scores: dict[tuple[int, int], float] = {}
    for kept in by_passage:
        scores.update(scorer.passage(kept))
    return by_passage, scores
