"""Mention detection: trigger words and phrases, matched at word boundaries."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=32)
def _trigger_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so "hey agent" wins over "hey". A phrase's words may be separated by
    # any run of whitespace ("Hey  Agent"); each piece is a literal, so no user text can
    # make the pattern backtrack badly.
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in w.split())
        for w in sorted(words, key=len, reverse=True)
    )
    # A word boundary that also works for triggers starting with '@': no word character
    # (or '@') directly before, none directly after. Punctuation right after the trigger
    # ("@agent, ...", "hey agent: ...") goes with it.
    return re.compile(rf"(?<![\w@])(?:{alternatives})(?!\w)[,:;]*", re.IGNORECASE)


def find_mention(body: str, trigger_words: tuple[str, ...]) -> tuple[bool, str]:
    """(mentioned, question): the question is the body without the trigger words."""
    pattern = _trigger_pattern(trigger_words)
    if not pattern.search(body):
        return False, body.strip()
    question = pattern.sub(" ", body)
    # "@agent, what ..." / "@agent: what ..." leave stray punctuation at the start.
    question = re.sub(r"^[\s,:;.\-–—!]+", "", question)
    return True, re.sub(r"[ \t]{2,}", " ", question).strip()
