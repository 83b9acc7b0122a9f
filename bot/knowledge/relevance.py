"""Whether the knowledge covers a question enough to answer from it: the relevance floor.

The coverage of a question is the largest share of its words, each weighted by FTS5's idf
over chunks, that one document holds (a word found nowhere weighs the most). With vectors
the best chunk cosine is added. Below the floor a store finds nothing, and the bot says
the knowledge base does not cover the question instead of quoting its least bad passages.

Off by default (`knowledge.relevance_floor`): it was fitted on qmsum-val's 35 long meetings
with 64 off-topic questions (benchmarks/offtopic_questions.json; 0.9 of them refused at a
cost of about 0.04 of the answered real questions), and on a small knowledge base, whose
vocabulary lacks everyday words such as "many" or "left", it refuses real questions (25 of
the 43 sample questions). docs/PERFORMANCE.md has the figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

LEXICAL_FLOOR = 0.676
# Coverage + best chunk cosine, calibrated on all-MiniLM-L6-v2 (the semantic stand-in,
# ../shared/tools/semantic_embeddings); mistral-embed spreads its cosines differently, so
# with it this floor needs calibrating again.
HYBRID_FLOOR = 1.007
MIN_IDF = 1e-6  # FTS5's: a word in more than half of the chunks still counts a little


def idf(total: int, holding: int) -> float:
    """FTS5's inverse document frequency of a word held by `holding` of `total` rows."""
    return max(math.log((total - holding + 0.5) / (holding + 0.5)), MIN_IDF)


def coverage(weights: Sequence[float], holders: Sequence[Iterable[str]]) -> float:
    """The largest share of the question's weight one document holds: `weights[i]` is the
    idf of word i, `holders[i]` the documents containing it (none for a word found nowhere,
    whose weight still counts in the total)."""
    total = sum(weights)
    if total <= 0:
        return 0.0
    held: dict[str, float] = {}
    for weight, documents in zip(weights, holders, strict=True):
        for doc_id in set(documents):
            held[doc_id] = held.get(doc_id, 0.0) + weight
    return max(held.values(), default=0.0) / total


def covered(share: float | None, best_cosine: float | None = None) -> bool:
    """Whether a question clears the floor: always when there is nothing to judge by
    (`share` None), by coverage alone without vectors, with `best_cosine` added with them."""
    if share is None:
        return True
    if best_cosine is None:
        return share >= LEXICAL_FLOOR
    return share + best_cosine >= HYBRID_FLOOR
