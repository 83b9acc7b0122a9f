"""One search in the SQLite store: the question's evidence read from the chunk index, the
document index (sqlite_doc_fts) and, with vectors, the vector leg; held to the relevance
floor (relevance.py) when it is on and ranked by sqlite_rank. Runs on one connection the
store hands it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.deadline import Deadline
from bot.knowledge.relevance import coverage, covered, idf
from bot.knowledge.sqlite_rank import (
    TOP_HITS,
    Hit,
    best_first,
    hybrid_scores,
    lexical_scores,
)

if TYPE_CHECKING:
    import numpy as np

    from bot.knowledge.vector_leg import VectorLeg

# bm25() weights per chunk_fts column (text, title, speakers): a title word counts double.
BM25_WEIGHTS = (1.0, 2.0, 1.0)
# bm25() costs far more than matching, so it is computed only for the rows that hold the
# query's rarest terms, up to about this many rows; rows holding only common terms (which
# score low anyway) are left out. Below this size every matching row is ranked.
CANDIDATE_ROWS = 1000

_BM25 = f"bm25(chunk_fts, {', '.join(map(str, BM25_WEIGHTS))})"
_HITS = f"""
SELECT hit.rowid, c.doc_id, c.seq, -hit.bm25
FROM (SELECT rowid, {_BM25} AS bm25 FROM chunk_fts WHERE {{where}} ORDER BY bm25 LIMIT ?)
     AS hit
JOIN chunks c ON c.pk = hit.rowid
"""
_SEARCH = _HITS.format(where="chunk_fts MATCH ?")
# `+rowid`: filter the scan instead of one FTS lookup per candidate (which is far slower).
_GATED_SEARCH = _HITS.format(
    where="chunk_fts MATCH ? AND +rowid IN (SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH ?)"
)
_COUNT = "(SELECT count(*) FROM chunk_fts WHERE chunk_fts MATCH ?)"
# The title column weighs 0: a document's BM25 is over its chunk texts only.
_DOCUMENT_BM25 = """
SELECT c.doc_id, -bm25(doc_fts, 1.0, 0.0) FROM doc_fts JOIN chunks c ON c.pk = doc_fts.rowid
WHERE doc_fts MATCH ?
"""
_HOLDERS = """
SELECT c.doc_id FROM doc_fts JOIN chunks c ON c.pk = doc_fts.rowid WHERE doc_fts MATCH ?
"""
_PLACES = "SELECT pk, doc_id, seq FROM chunks WHERE pk IN ({marks})"
_ROWS = """
SELECT c.id, c.doc_id, c.text, c.speakers, d.title, d.date, c.pk
FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.pk IN ({marks})
"""


def search(
    conn: sqlite3.Connection,
    query: str,
    terms: Sequence[str],
    k: int,
    vectors: VectorLeg | None,
    deadline: Deadline,
    floor: bool = False,
) -> list[tuple[tuple, float]]:
    """The `k` best (passage row, score) pairs, best first; [] when `floor` is on and the
    question is not covered enough to clear it. The hybrid ranking and floor when the question gets
    a vector, else the lexical ones."""
    counts = _counts(conn, terms)
    share = _coverage(conn, terms, counts) if floor else None
    vector = None
    # A question no cosine could lift over the floor is not even embedded.
    if vectors is not None and covered(share, best_cosine=1.0):
        vector = vectors.question(conn, query, deadline)
    if vector is None or vectors is None:
        if not covered(share):
            return []
        hits = _lexical_hits(conn, terms, counts)
        scores = lexical_scores(hits, _document_bm25(conn, terms))
    else:
        hits = _with_cosines(conn, vectors, vector, _lexical_hits(conn, terms, counts))
        if not covered(share, max((h.cosine for h in hits), default=0.0)):
            return []
        doc_ids = {hit.doc_id for hit in hits}
        scores = hybrid_scores(
            hits, _document_bm25(conn, terms), vectors.document_cosines(conn, vector, doc_ids)
        )
    top = best_first(scores, k)
    return [(row, scores[row[-1]]) for row in chunk_rows(conn, top)]


def _counts(conn: sqlite3.Connection, terms: Sequence[str]) -> dict[str, int]:
    """How many chunks hold each term."""
    # One statement for all the terms: a statement per term costs a round of Python and
    # statement-cache overhead each (the query text is the same for the same term count).
    if not terms:
        return {}
    found = conn.execute(f"SELECT {', '.join([_COUNT] * len(terms))}", list(terms)).fetchone()
    return dict(zip(terms, found, strict=True))


def _coverage(conn: sqlite3.Connection, terms: Sequence[str], counts: dict[str, int]) -> float:
    """The largest idf-weighted share of the terms one document holds (relevance.py)."""
    total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    if not total:
        return 0.0
    holders = [
        [doc_id for (doc_id,) in conn.execute(_HOLDERS, (term,))] if counts[term] else []
        for term in terms
    ]
    return coverage([idf(total, counts[term]) for term in terms], holders)


def _lexical_hits(
    conn: sqlite3.Connection, terms: Sequence[str], counts: dict[str, int]
) -> list[Hit]:
    """The top BM25 hits, scoring only rows that hold the rarest terms at scale."""
    # A term found nowhere must not become the gate: it would let no row through.
    present = sorted((t for t in terms if counts[t]), key=counts.__getitem__)
    if not present:
        return []
    rare, rows = [], 0
    for term in present:
        if rare and rows + counts[term] > CANDIDATE_ROWS:
            break
        rare.append(term)
        rows += counts[term]
    match = " OR ".join(terms)
    if len(rare) == len(present):
        found = conn.execute(_SEARCH, (match, TOP_HITS)).fetchall()
    else:
        found = conn.execute(_GATED_SEARCH, (match, " OR ".join(rare), TOP_HITS)).fetchall()
    return [Hit(pk, doc_id, seq, lexical=score) for pk, doc_id, seq, score in found]


def _document_bm25(conn: sqlite3.Connection, terms: Sequence[str]) -> dict[str, float]:
    """Each matching document's -bm25 over all its text."""
    return dict(conn.execute(_DOCUMENT_BM25, (" OR ".join(terms),)).fetchall())


def _with_cosines(
    conn: sqlite3.Connection, vectors: VectorLeg, vector: np.ndarray, hits: list[Hit]
) -> list[Hit]:
    """The BM25 hits and the nearest chunks together, each with its cosine."""
    nearest = dict(vectors.nearest(conn, vector, TOP_HITS))
    lexical = {hit.pk for hit in hits}
    cosines = vectors.cosines(conn, vector, [pk for pk in lexical if pk not in nearest])
    cosines.update(nearest)
    places = _places(conn, [pk for pk in nearest if pk not in lexical])
    joined = [Hit(h.pk, h.doc_id, h.seq, h.lexical, cosines.get(h.pk, 0.0)) for h in hits]
    joined += [Hit(pk, doc_id, seq, 0.0, nearest[pk]) for pk, doc_id, seq in places]
    return joined


def _places(conn: sqlite3.Connection, pks: Sequence[int]) -> list[tuple[int, str, int]]:
    """(pk, doc_id, seq) of these chunks (removed ones left out)."""
    if not pks:
        return []
    return conn.execute(_PLACES.format(marks=",".join("?" * len(pks))), list(pks)).fetchall()


def chunk_rows(conn: sqlite3.Connection, pks: Sequence[int]) -> list[tuple]:
    """Search rows (id, doc_id, text, speakers, title, date, pk) of chunks, in `pks` order."""
    if not pks:
        return []
    rows = {row[-1]: row for row in conn.execute(_ROWS.format(marks=",".join("?" * len(pks))), pks)}
    return [rows[pk] for pk in pks if pk in rows]
