"""Free user text -> FTS5 query terms: safe, stopword-free, stemmed-prefix where it helps."""

from __future__ import annotations

import re

from bot.text import STOPWORDS

MAX_TERMS = 32  # a pasted essay should not become a 500-term OR query
# Words of 6+ letters are queried as prefixes of their Porter stem (FTS5 stems the prefix
# too): "attended" -> attend* also finds "attendees" (stem "attende"), "organisation"
# finds "organisations". Shorter stems ("use" -> us*) would match unrelated words.
PREFIX_MIN_CHARS = 6

# How people ask about meetings ("summarise the discussion about X", "what did Tom say
# about X"), not what they ask about: as rare words they would otherwise outweigh X.
REQUEST_WORDS = frozenset(
    """summarize summarise summarized summarised summary describe described explain
    explained discuss discussed discusses discussing discussion discussions talk talks
    talked talking say says said think thinks thought mention mentions mentioned
    opinion opinions""".split()
)
_WORD = re.compile(r"[^\W_]+")


def query_words(text: str) -> list[str]:
    """The distinct searchable words of free text, lower case, in order (at most 32).

    Stopwords and request words are dropped unless nothing else is left ("who are you?"
    still searches for something)."""
    tokens = list(dict.fromkeys(t.lower() for t in _WORD.findall(text)))
    useful = [t for t in tokens if len(t) > 1 or t.isdigit()]
    content = [t for t in useful if t not in STOPWORDS and t not in REQUEST_WORDS]
    return (content or [t for t in useful if t not in STOPWORDS] or tokens)[:MAX_TERMS]


def fts_term(word: str) -> str:
    """One FTS5 term: a quoted string (never FTS5 syntax), a stem prefix for long words."""
    return f'"{word}"*' if len(word) >= PREFIX_MIN_CHARS else f'"{word}"'


def build_match_query(text: str) -> str:
    """Turn free user text into a safe FTS5 query: quoted word terms joined by OR.

    Only letters and digits survive, each term is a quoted string, so FTS5 syntax in the
    question (quotes, parentheses, *, ^, :, AND/OR/NOT/NEAR) is never interpreted."""
    return " OR ".join(fts_term(w) for w in query_words(text))
