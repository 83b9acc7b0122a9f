"""How candidate chunks are ranked: each chunk's own score plus its document's evidence.

Finding the right meeting is the hard part (20 of QMSum's 35 meetings are alike), so a
chunk is lifted by what its document shows as a whole. Full text only (QMSum validation,
0.565 on the SQLite store; 0.540 without the whole-document BM25):
    score(c) = L(c) / max L + T2(d) + 0.2 DB(d) + 0.2 OPEN(d)
L is the store's BM25 of the top CANDIDATES full-text hits; T2 the sum of a document's two
best L, OPEN its best L among its first two chunks, DB its BM25 as one whole document
(evidence.py), each divided by its maximum over documents. With vectors (0.616; 0.591
without DB), over the top CANDIDATES of each leg:
    c(c) = L(c) / max L + 2 max(cos(c), 0)
    score(c) = c(c) + 0.75 max c over d ÷ its maximum + 0.2 DB(d) + 0.5 cos(q, centroid d)
The weights come from research on qmsum-val (docs/PERFORMANCE.md); the relevance floor that
may refuse a question first is relevance.py's, fed by evidence.py's coverage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

CANDIDATES = 100  # hits of each leg the ranking chooses from
OPENING_CHUNKS = 2  # a document's first chunks (seq below this) say what it is about
T2_WEIGHT, LEXICAL_DB_WEIGHT, OPENING_WEIGHT = 1.0, 0.2, 0.2
COSINE_WEIGHT, BEST_WEIGHT, HYBRID_DB_WEIGHT, CENTROID_WEIGHT = 2.0, 0.75, 0.2, 0.5

Ranked = list[tuple[dict, float]]


def _key(row: dict) -> str:
    return str(row["chunk_id"])


def _document(row: dict) -> str:
    """The document a row belongs to (a chunk without one stands alone)."""
    return str(row.get("document_id") or "") or f"chunk:{_key(row)}"


def _share(values: dict[str, float]) -> dict[str, float]:
    """Each value divided by the largest (all 0 when none is positive)."""
    top = max(values.values(), default=0.0)
    return {k: v / top if top > 0 else 0.0 for k, v in values.items()}


def _ordered(rows: Iterable[dict], scores: Mapping[str, float]) -> Ranked:
    """(row, score) best first; ties keep the rows' order."""
    return sorted(((row, scores[_key(row)]) for row in rows), key=lambda item: -item[1])


def lexical(rows: list[dict], bm25: Mapping[str, float]) -> Ranked:
    """Full-text rows (their `score` the store's BM25, `seq` their place) ranked with their
    documents' evidence; `bm25` maps document ids to their share of the best DB."""
    own = {_key(r): float(r.get("score") or 0.0) for r in rows}
    best = max(own.values(), default=0.0) or 1.0
    by_document: dict[str, list[float]] = defaultdict(list)
    opening: dict[str, float] = defaultdict(float)
    for row in rows:
        doc, score = _document(row), own[_key(row)]
        by_document[doc].append(score)
        if row.get("seq") is not None and int(row["seq"]) < OPENING_CHUNKS:
            opening[doc] = max(opening[doc], score)
    two = _share({d: sum(sorted(s, reverse=True)[:2]) for d, s in by_document.items()})
    first = _share(dict(opening))
    lift = {
        d: T2_WEIGHT * two[d]
        + LEXICAL_DB_WEIGHT * bm25.get(d, 0.0)
        + OPENING_WEIGHT * first.get(d, 0.0)
        for d in by_document
    }
    return _ordered(rows, {_key(r): own[_key(r)] / best + lift[_document(r)] for r in rows})


def hybrid(
    text_rows: list[dict],
    vector_rows: list[dict],
    cosines: Mapping[str, tuple[float, float]],
    bm25: Mapping[str, float],
) -> Ranked:
    """Both legs' rows ranked together; `cosines` maps chunk ids to (the chunk's cosine,
    its document centroid's cosine) to the question."""
    rows = {_key(r): r for r in vector_rows} | {_key(r): r for r in text_rows}
    lexical = {_key(r): float(r.get("score") or 0.0) for r in text_rows}
    best = max(lexical.values(), default=0.0) or 1.0
    own = {
        key: lexical.get(key, 0.0) / best
        + COSINE_WEIGHT * max(cosines.get(key, (0.0, 0.0))[0], 0.0)
        for key in rows
    }
    top: dict[str, float] = defaultdict(float)
    centroid: dict[str, float] = {}
    for key, row in rows.items():
        doc = _document(row)
        top[doc] = max(top[doc], own[key])
        centroid[doc] = cosines.get(key, (0.0, 0.0))[1]
    share = _share(dict(top))
    lift = {
        d: BEST_WEIGHT * share[d] + HYBRID_DB_WEIGHT * bm25.get(d, 0.0) + CENTROID_WEIGHT * c
        for d, c in centroid.items()
    }
    return _ordered(rows.values(), {k: own[k] + lift[_document(r)] for k, r in rows.items()})
