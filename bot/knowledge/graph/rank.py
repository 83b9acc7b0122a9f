"""BM25 over full-text candidates, for engines whose own score cannot rank (FalkorDB).

FalkorDB scores a hit by the term's count divided by the chunk's most frequent term and
gives every term about the same weight, so a rare meeting name counts no more than
"meeting". The store therefore asks it only for the chunks holding the question's rarest
terms (a few hundred rows) and ranks those here with BM25, using the engine's own counts
of chunks per term for the inverse document frequencies.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from bot.knowledge.graph.text import MAX_TERM_BYTES, clip_bytes, idf
from bot.text import STOPWORDS

K1 = 1.2
B = 0.75
TITLE_WEIGHT = 2  # a title word counts twice, as in the SQLite store
CANDIDATE_ROWS = 200  # rows fetched for ranking: the rarest terms' chunks, about this many

_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix-stripping stem: "meetings" and "meeting" agree, "is" stays "is", and
    so do "decide" and "decided", "agree" and "agreed" (a final e goes, as in Porter's)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word[:-1] if len(word) >= 4 and word.endswith("e") else word


def words(text: str) -> list[str]:
    """The lower-case words of `text`, unstemmed."""
    return _WORD.findall(text.lower())


def tokens(text: str) -> list[str]:
    """Lower-case stems of the words of `text`."""
    return list(map(stem, words(text)))


def content_stems(found: Iterable[str]) -> list[str]:
    """Stems of the words worth counting in document statistics: no stopwords, no single
    letters, none longer than a search term can be."""
    return [
        stem(clip_bytes(w, MAX_TERM_BYTES))
        for w in found
        if (len(w) > 1 or w.isdigit()) and w not in STOPWORDS
    ]


def rarest(frequencies: Mapping[str, int], rows: int = CANDIDATE_ROWS) -> list[str]:
    """Terms in order of rarity until their chunks add up to about `rows` (at least one)."""
    chosen, total = [], 0
    for term, count in sorted(frequencies.items(), key=lambda item: item[1]):
        if count == 0:
            continue
        if chosen and total + count > rows:
            break
        chosen.append(term)
        total += count
    return chosen


def bm25(
    terms: Sequence[str], frequencies: Mapping[str, int], chunks: int, rows: Sequence[dict]
) -> list[tuple[dict, float]]:
    """`rows` ({"text", "title", ...}) scored by BM25 for the query terms, best first.

    `terms` are the question's words and `frequencies` maps each to how many of the
    `chunks` hold it; rows without any query term are dropped."""
    # A RediSearch term is a word (backslash-escaped) or a stem prefix such as `attend*`.
    wanted = [
        (stem(t.replace("\\", "")), False) if not t.endswith("*") else (t[:-1], True) for t in terms
    ]
    weights = {
        key: idf(chunks, frequencies.get(t, 0)) for key, t in zip(wanted, terms, strict=True)
    }
    docs = [
        Counter(tokens(str(row.get("text") or "")))
        + Counter({t: TITLE_WEIGHT for t in set(tokens(str(row.get("title") or "")))})
        for row in rows
    ]
    average = sum(sum(d.values()) for d in docs) / max(len(docs), 1) or 1.0
    scored = []
    for row, counts in zip(rows, docs, strict=True):
        length = sum(counts.values())
        score = 0.0
        for (term, prefix), weight in weights.items():
            tf = sum(n for w, n in counts.items() if w.startswith(term)) if prefix else counts[term]
            if tf:
                score += weight * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        if score > 0:
            scored.append((row, score))
    return sorted(scored, key=lambda item: -item[1])
