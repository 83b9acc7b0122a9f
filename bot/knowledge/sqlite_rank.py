"""The SQLite store's ranking, as plain arithmetic (no SQL, no numpy).

A chunk's own BM25 cannot tell which of 20 near-identical meetings a question is about; the
meeting's other evidence can. So each candidate chunk's score adds a document score:

- lexical: score = L / max L + 1.0 T2 + 0.2 DB + 0.2 OPEN, where L is the chunk's -bm25,
  T2 the sum of its document's two best L among the hits, DB the document's own -bm25 over
  all its text, OPEN its best L in its first two chunks (where meetings state their agenda);
  T2, DB and OPEN each divided by their maximum over documents;
- hybrid: c = L / max L + 2.0 max(cosine, 0); score = c + 0.75 (best c of the document,
  divided by its maximum over documents) + 0.2 DB + 0.5 cosine(question, document vector).

The weights come from research on qmsum-val (docs/PERFORMANCE.md has the figures); the
relevance floor that may refuse a question first is relevance.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

TOP_HITS = 100  # BM25 hits (and, with vectors, nearest chunks) the ranking chooses from
OPENING_CHUNKS = 2  # a document's chunks with seq below this are its opening
BEST_TWO_WEIGHT, DOCUMENT_BM25_WEIGHT, OPENING_WEIGHT = 1.0, 0.2, 0.2
COSINE_WEIGHT, BEST_CANDIDATE_WEIGHT, DOCUMENT_VECTOR_WEIGHT = 2.0, 0.75, 0.5
_TINY = 1e-9


# A named tuple, not a frozen dataclass: a search makes 100 or more, and a tuple is built
# several times faster.
class Hit(NamedTuple):
    """A candidate chunk: where it sits, and what each leg made of it."""

    pk: int
    doc_id: str
    seq: int
    lexical: float = 0.0  # -bm25 with the column weights; 0 when BM25 did not return it
    cosine: float = 0.0  # with the question's vector; 0 without vectors


def _scaled(values: Mapping[str, float]) -> dict[str, float]:
    """Each document's value divided by the largest."""
    top = max(max(values.values(), default=0.0), _TINY)
    return {doc_id: value / top for doc_id, value in values.items()}


def _blend(
    documents: Iterable[str], *signals: tuple[float, Mapping[str, float]]
) -> dict[str, float]:
    """Each document's weighted sum of its signals (a signal it lacks counts 0)."""
    # Signal by signal rather than a sum() per document: the same additions in the same
    # order (0, then each signal's term), without a generator per document.
    blended = dict.fromkeys(documents, 0)
    for weight, values in signals:
        get = values.get
        for d in blended:
            blended[d] += weight * get(d, 0.0)
    return blended


def lexical_scores(hits: Sequence[Hit], document_bm25: Mapping[str, float]) -> dict[int, float]:
    """Chunk pk -> score for BM25 hits: their own L / max L plus their document's score."""
    if not hits:
        return {}
    best_two: dict[str, list[float]] = {}
    opening: dict[str, float] = {}
    for hit in hits:
        best_two.setdefault(hit.doc_id, []).append(hit.lexical)
        if hit.seq < OPENING_CHUNKS:
            opening[hit.doc_id] = max(opening.get(hit.doc_id, 0.0), hit.lexical)
    for values in best_two.values():
        values.sort(reverse=True)
    t2 = _scaled({d: sum(v[:2]) for d, v in best_two.items()})
    document = _blend(
        t2,
        (BEST_TWO_WEIGHT, t2),
        (DOCUMENT_BM25_WEIGHT, _scaled(document_bm25)),
        (OPENING_WEIGHT, _scaled(opening)),
    )
    top = max(max(hit.lexical for hit in hits), _TINY)
    return {hit.pk: hit.lexical / top + document[hit.doc_id] for hit in hits}


def hybrid_scores(
    hits: Sequence[Hit], document_bm25: Mapping[str, float], document_cosine: Mapping[str, float]
) -> dict[int, float]:
    """Chunk pk -> score for the union of BM25 hits and nearest chunks (`document_cosine`:
    the question's cosine with each document's vector; a document without one counts 0)."""
    top = max((hit.lexical for hit in hits), default=0.0)
    own = {
        hit.pk: (hit.lexical / top if top > 0 else 0.0) + COSINE_WEIGHT * max(hit.cosine, 0.0)
        for hit in hits
    }
    best: dict[str, float] = {}
    for hit in hits:
        best[hit.doc_id] = max(best.get(hit.doc_id, 0.0), own[hit.pk])
    document = _blend(
        best,
        (BEST_CANDIDATE_WEIGHT, _scaled(best)),
        (DOCUMENT_BM25_WEIGHT, _scaled(document_bm25)),
        (DOCUMENT_VECTOR_WEIGHT, document_cosine),
    )
    return {hit.pk: own[hit.pk] + document[hit.doc_id] for hit in hits}


def best_first(scores: Mapping[int, float], k: int) -> list[int]:
    """The `k` best pks, ties broken by pk (ingest order)."""
    # By pk, then a stable sort by score (reverse keeps equal scores in pk order): the
    # same order as a (-score, pk) key, without a key tuple per chunk.
    ordered = sorted(scores)
    ordered.sort(key=scores.__getitem__, reverse=True)
    return ordered[:k]
