"""Search text for follow-up questions: "why was that decided?" keeps the earlier topic."""

from __future__ import annotations

import re

from bot.models import Turn
from bot.text import STOPWORDS

# Words that point back at something said before: their referent is in an earlier turn.
_ANAPHORA = {
    "that",
    "this",
    "it",
    "its",
    "they",
    "them",
    "their",
    "those",
    "these",
    "there",
    "then",
    "he",
    "she",
    "his",
    "her",
    "him",
    "such",
    "same",
    "above",
    "earlier",
    "previous",
}
# Words that name no topic: the one stopword list, plus how people ask for a reason.
_FILLER = STOPWORDS | {"decide", "decided", "mean", "ok", "okay"}
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_BORROWED_TURNS = 3


def is_follow_up(question: str) -> bool:
    """A question that refers back, or names no topic of its own."""
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in _FILLER and w not in _ANAPHORA]
    # "What about Germany?" names its own topic; "why?" or "why was that?" does not.
    return bool(set(words) & _ANAPHORA) or not content


def search_query(question: str, turns: list[Turn]) -> str:
    """The question, plus the earlier questions it depends on when it is a follow-up."""
    if not is_follow_up(question):
        return question
    borrowed: list[str] = []
    for turn in reversed(turns):
        if turn.role != "user":
            continue
        borrowed.append(turn.text)
        if len(borrowed) >= MAX_BORROWED_TURNS or not is_follow_up(turn.text):
            break
    return " ".join([question, *reversed(borrowed)])
