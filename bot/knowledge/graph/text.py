"""Pure text helpers for the graph store: safe full-text queries, people questions, fusion.

User text never reaches a full-text engine's query parser as syntax: it is cut into
words, and each word is escaped for Lucene (Neo4j) or RediSearch (FalkorDB) before it
is joined with the engine's OR operator. The query string then travels as a parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

from bot.text import STOPWORDS  # the one stopword list

K = TypeVar("K", bound=Hashable)

MAX_TERMS = 32  # a pasted essay should not become a 500-term OR query
# FalkorDB pastes query parameters into a ~4 KB buffer (see dialect_falkordb.py).
MAX_QUERY_BYTES = 1500
MAX_TERM_BYTES = 100
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)

# Letters and digits, with inner underscores kept: both engines index `blue_falcon` as
# one token, so splitting it would never match.
_WORD = re.compile(r"[^\W_]+(?:_+[^\W_]+)*")
# "attended" and "attendees" stem differently; a prefix query finds both.
_PREFIXES = {w: "attend" for w in ("attend", "attends", "attended", "attending", "attendee")}
_PREFIXES.update(attendees="attend", attendance="attend", participants="particip")
_PREFIXES.update(participant="particip", participated="particip", participating="particip")

_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')
# RediSearch separates tokens at punctuation and whitespace; escaped, they stay literal.
_REDISEARCH_SPECIAL = re.compile(r"([^\w])")

_PEOPLE_QUESTION = re.compile(
    r"\bwho\b.{0,40}?\b(?:attend\w*|spoke|speak\w*|join\w*|participat\w*|present|there)\b"
    r"|\bwho\s+(?:was|were)\s+(?:at|in)\b"
    r"|\b(?:attendees?|attendance|participants?|speakers)\b",
    re.IGNORECASE | re.DOTALL,
)


def search_terms(text: str) -> list[str]:
    """Distinct lower-case words of free text worth searching for (at most MAX_TERMS).

    Stopwords are dropped unless nothing else is left ("who are you?" still searches)."""
    # No real word is longer than MAX_TERM_BYTES; a pasted blob only needs its start.
    words = (clip_bytes(t.lower(), MAX_TERM_BYTES) for t in _WORD.findall(text))
    tokens = list(dict.fromkeys(w for w in words if w))
    useful = [t for t in tokens if len(t) > 1 or t.isdigit()]
    content = [t for t in useful if t not in STOPWORDS]
    return (content or useful or tokens)[:MAX_TERMS]


def escape_lucene(term: str) -> str:
    """Backslash-escape every Lucene query operator character."""
    return _LUCENE_SPECIAL.sub(r"\\\1", term)


def escape_redisearch(term: str) -> str:
    """Backslash-escape every character RediSearch would read as syntax or a separator."""
    return _REDISEARCH_SPECIAL.sub(r"\\\1", term)


def clip_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` that is at most `limit` bytes of UTF-8."""
    return text.encode("utf-8")[: max(0, limit)].decode("utf-8", errors="ignore")


def _join(parts: Iterable[str], sep: str) -> str:
    """Distinct parts joined by `sep`, stopping before MAX_QUERY_BYTES is exceeded."""
    chosen: list[str] = []
    size = 0
    for part in dict.fromkeys(parts):
        cost = len(part.encode("utf-8")) + len(sep)
        if size + cost > MAX_QUERY_BYTES:
            break
        chosen.append(part)
        size += cost
    return sep.join(chosen)


def lucene_query(text: str) -> str:
    """Free text as a Lucene query: quoted, escaped terms (or stem prefixes) joined by OR.

    Quoting also defuses AND / OR / NOT / TO typed as words."""
    parts = [
        f"{_PREFIXES[t]}*" if t in _PREFIXES else f'"{escape_lucene(t)}"'
        for t in search_terms(text)
    ]
    return _join(parts, " OR ")


def redisearch_terms(text: str) -> list[str]:
    """The escaped RediSearch terms (or stem prefixes) of free text, in order."""
    parts = (
        f"{_PREFIXES[t]}*" if t in _PREFIXES else escape_redisearch(t) for t in search_terms(text)
    )
    return list(dict.fromkeys(parts))


def idf(chunks: int, frequency: int) -> float:
    """BM25's inverse document frequency: rare terms weigh more, none weighs below 0."""
    return math.log(1 + (chunks - frequency + 0.5) / (frequency + 0.5))


def redisearch_query(text: str) -> str:
    """Free text as a RediSearch query: escaped terms (or stem prefixes) joined by `|`."""
    return _join(redisearch_terms(text), "|")


def is_people_question(text: str) -> bool:
    """True for "who attended X?", "who spoke in X", "participants of X" and the like."""
    return _PEOPLE_QUESTION.search(text) is not None


def without_people_words(text: str) -> str:
    """`text` without the words that make it a people question ("who attended", ...)."""
    return _PEOPLE_QUESTION.sub(" ", text)


def best_title_match(question: str, titles: Sequence[str]) -> int:
    """Index of the title sharing most words with the question, ignoring the words of a
    people question ("who attended", "spoke"); the first title wins ties and no match."""
    wanted = set(search_terms(without_people_words(question)))
    overlaps = [len(wanted & set(search_terms(title))) for title in titles]
    return max(range(len(titles)), key=lambda i: (overlaps[i], -i)) if titles else 0


def people_text(title: str, date: str, people: Sequence[str]) -> str:
    """The passage that answers a people question from the graph."""
    when = f" ({date})" if date else ""
    return f"People in {title}{when}: {', '.join(people)}."


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[K]], k: int = RRF_K
) -> list[tuple[K, float]]:
    """Fuse best-first rankings: score(x) = sum of 1 / (k + rank), best first.

    Ranks, not raw scores, are combined, so a BM25/TF-IDF score and a cosine similarity
    (or FalkorDB's distance) never need a common scale. Ties keep first-seen order."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(dict.fromkeys(ranking), start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
