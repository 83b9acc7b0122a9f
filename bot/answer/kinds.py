"""What kind of answer a question wants (a name, a date, an amount...) and which sentences
carry one. English cues: the questions teams ask the bot are mostly English."""

from __future__ import annotations

import re
from functools import lru_cache

PERSON, TIME, AMOUNT, PLACE = "person", "time", "amount", "place"
REASON, DECISION = "reason", "decision"

# How a question names the kind of answer it wants. The phrase names the kind, not the
# topic: "how much funding is left?" is about funding; "much" matches nothing useful.
_ASKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (AMOUNT, r"\bhow (?:much|many|long|often|big|large|far)\b|\bwhat (?:amount|number)\b"),
        # "When is...?" asks for a time; "what did X say when discussing Y?" does not.
        (TIME, r"(?:^|[,;:(]|\band|\bso|\bby|\buntil|\bsince)\s*when\b"),
        (TIME, r"\b(?:what|which) (?:date|day|time|year|month|week)\b"),
        (TIME, r"\bdeadline\b|\bhow soon\b|\bdue\b"),
        (PERSON, r"\bwho(?:m|se)?\b|\b(?:which|what) (?:person|people|colleague|member)s?\b"),
        (PLACE, r"\bwhere\b|\b(?:which|what) (?:places?|cit(?:y|ies)|countr(?:y|ies)|venues?)\b"),
        (REASON, r"\bwhy\b|\bhow come\b|\b(?:the|what) reasons?\b"),
        (DECISION, r"\bdecid\w*|\bdecision\w*|\bagree\w*|\bconclu\w*|\bsettled\b"),
    )
)
# The words of those phrases that would otherwise count as topic words.
_KIND_WORDS = re.compile(
    r"\bhow (?:much|many|long|often|big|large|far|soon|come)\b"
    r"|\b(?:what|which) (?:amount|number|date|day|time|year|month|week)s?\b",
    re.IGNORECASE,
)

_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
# "One" is left out: "that one is safe" is no amount.
_NUMBER_WORDS = (
    "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty "
    "forty fifty sixty seventy eighty ninety hundred thousand million billion half dozen "
    "several few couple"
)
_CUES: dict[str, re.Pattern[str]] = {
    TIME: re.compile(
        r"\b\d{4}-\d{2}(?:-\d{2})?\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\b(?:19|20)\d{2}\b"
        r"|\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b|\b\d{1,2}:\d{2}\b"
        rf"|\b(?:{'|'.join(_MONTHS + _DAYS)})\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{'|'.join(_MONTHS)})\b"
        rf"|\b(?:{'|'.join(_MONTHS)})\s+\d{{1,2}}\b"
        r"|\b(?:today|tomorrow|yesterday|tonight|weekend|weeks?|months?|quarter|annual"
        r"|morning|afternoon|evening|deadline|until|by then|soon|later|next|last)\b",
        re.IGNORECASE,
    ),
    AMOUNT: re.compile(
        r"\d|[$€£¥%]|\b(?:euros?|dollars?|pounds?|percent|per cent|budget|costs?|price"
        r"|flat|cut|level|increase[sd]?|decrease[sd]?|rise|fell|fall|double|twice"
        rf"|{'|'.join(_NUMBER_WORDS.split())})\b",
        re.IGNORECASE,
    ),
    PLACE: re.compile(
        r"\b(?:in|at|from|to|near|via)\s+(?:the\s+)?[A-Z][\w-]+"
        r"|(?i:\b(?:office|room|venue|city|country|countries|building|hall|online|remotely"
        r"|call|folder|headquarters|location)\b)",
    ),
    REASON: re.compile(
        r"\b(?:why|because|since|reasons?|due to|therefore|thus|hence|caused?|causes|otherwise"
        r"|so that|in order to|would|as a result|means|given that|constraint)\b|, so\b",
        re.IGNORECASE,
    ),
    DECISION: re.compile(
        r"\b(?:decided|decide|decision|agreed|agree|concluded?|resolved|chose|settled|final"
        r"|we will|we'll|let's|going to)\b",
        re.IGNORECASE,
    ),
}
_TOKEN_RE = re.compile(r"[^\W\d_][\w'’-]*")
_FULL_NAME_RE = re.compile(r"\b[A-Z][a-zà-ÿ'’-]+(?: [A-Z][a-zà-ÿ'’-]+){1,2}\b")
_NOT_NAMES = {w.capitalize() for w in _MONTHS + _DAYS} | {"I", "I'll", "I'd", "I'm", "I've"}


def question_kinds(question: str) -> frozenset[str]:
    """The kinds of answer the question asks for (none for "summarise the discussion")."""
    return frozenset(kind for kind, pattern in _ASKS if pattern.search(question))


def topic_text(question: str) -> str:
    """The question without the phrases that only name the kind of answer ("how much")."""
    return _KIND_WORDS.sub(" ", question)


def full_names(text: str) -> set[str]:
    """The words of "Tom Fletcher"-like pairs: two or three capitalised words in a row, not
    after "the" ("the United Kingdom") and not months or days."""
    found: set[str] = set()
    for match in _FULL_NAME_RE.finditer(text):
        before = text[: match.start()].split()[-1:]
        if not before or before[0].lower() not in ("the", "of"):
            found.update(match.group(0).split())
    return found - _NOT_NAMES


def carries(kind: str, text: str, by_person: bool, question: str, people: set[str]) -> bool:
    """True when a sentence holds an answer of this kind; `by_person`: a person said it,
    `people`: the names known from the retrieved passages."""
    if kind == PERSON:
        # "Who said...?" is answered by the speaker; other names must be new to the question.
        named = set(_TOKEN_RE.findall(text)) & people
        return by_person or bool(named - _tokens(question)[0])
    # The question's own words are no answer: "what will it cost?" is not answered by
    # "the cost is a worry", nor "when is the deadline?" by "the deadline is tight".
    return not _cues(kind, text) <= _tokens(question)[1]


# carries() runs for every retrieved sentence and asked kind, and the same passages come
# back for question after question (their sentences are parsed once: scoring.py). What it
# finds in a sentence does not depend on the question, so it is found once: pure, keyed by
# the exact text; about 750 bytes an entry, so 3 MB at most (the sentences of the ~50
# passages the last few questions brought back, for the kinds they asked).
@lru_cache(maxsize=1 << 12)
def _cues(kind: str, text: str) -> frozenset[str]:
    """The lower-cased pieces of `text` that answer `kind` ("march 3", "€4,000"...)."""
    if kind == AMOUNT:  # "20 March" or "2026" is a date, not an amount
        text = _CUES[TIME].sub(" ", text)
    pattern = _CUES.get(kind)
    if pattern is None:
        return frozenset()
    return frozenset(match.group(0).lower() for match in pattern.finditer(text))


# Cached: carries() asks this of every retrieved sentence for the same question; keyed by
# the exact text and pure, so right across requests.
@lru_cache(maxsize=256)
def _tokens(question: str) -> tuple[frozenset[str], frozenset[str]]:
    """The question's words as written, and lower-cased."""
    found = _TOKEN_RE.findall(question)
    return frozenset(found), frozenset(w.lower() for w in found)
