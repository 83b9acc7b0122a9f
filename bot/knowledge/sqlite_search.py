"""One search in the SQLite store: the question's evidence read from the chunk index, the
document index (sqlite_doc_fts) and, with vectors, the vector leg; held to the relevance
floor (relevance.py) when it is on and ranked by sqlite_rank. Runs on one connection the
store hands it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
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
from bot.knowledge.sqlite_scope import (
    CHUNK_TEXT,
    DOCUMENT_TEXT,
    Known,
    Layout,
    Size,
    Statistics,
    Table,
    exact_scores,
    matching,
    table_size,
    term_rows,
)

if TYPE_CHECKING:
    import numpy as np

    from bot.knowledge.vector_leg import VectorLeg

# bm25() weights per chunk_fts column (text, title, speakers, collection): a title word
# counts double, the collection token not at all (it is only ever a filter).
BM25_WEIGHTS = (1.0, 2.0, 1.0, 0.0)
# doc_fts columns (text, title, collection): a document's BM25 is over its chunk texts only.
DOCUMENT_WEIGHTS = (1.0, 0.0, 0.0)
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
# As term_rows' `only` takes them, made by SQLite: no Python per row.
_CANDIDATES = "SELECT json_group_array(rowid) FROM chunk_fts WHERE chunk_fts MATCH ?"
_COUNT = "(SELECT count(*) FROM {table} WHERE {table} MATCH ?)"
_DOCUMENT_BM25 = f"""
SELECT c.doc_id, -bm25(doc_fts, {", ".join(map(str, DOCUMENT_WEIGHTS))})
FROM doc_fts JOIN chunks c ON c.pk = doc_fts.rowid WHERE doc_fts MATCH ?
"""
_HOLDERS = """
SELECT c.doc_id FROM doc_fts JOIN chunks c ON c.pk = doc_fts.rowid WHERE doc_fts MATCH ?
"""
_PLACES = "SELECT pk, doc_id, seq FROM chunks WHERE pk IN ({marks})"
_ROWS = """
SELECT c.id, c.doc_id, c.text, c.speakers, d.title, d.date, c.pk
FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.pk IN ({marks})
"""


@dataclass(frozen=True)
class Scope:
    """A search limited to some collections, their sizes, the store's layout and cache of
    counts at its `version`."""

    collections: frozenset[str]
    size: Size
    layout: Layout
    known: Known
    version: str


CHUNKS = Table("chunk_fts", BM25_WEIGHTS, CHUNK_TEXT)
DOCUMENTS = Table("doc_fts", DOCUMENT_WEIGHTS, DOCUMENT_TEXT)


def search(
    conn: sqlite3.Connection,
    query: str,
    terms: Sequence[str],
    k: int,
    vectors: VectorLeg | None,
    deadline: Deadline,
    floor: bool = False,
    scope: Scope | None = None,
) -> list[tuple[tuple, float]]:
    """The `k` best (passage row, score) pairs, best first; [] when `floor` is on and the
    question is not covered enough to clear it. The hybrid ranking and floor when the question gets
    a vector, else the lexical ones; with a `scope`, only its collections' rows, ranked by
    their statistics alone."""
    counts = _counts(conn, CHUNKS, terms, scope)
    share = _coverage(conn, terms, counts, scope) if floor else None
    vector = None
    # A question no cosine could lift over the floor is not even embedded.
    if vectors is not None and covered(share, best_cosine=1.0):
        vector = vectors.question(conn, query, deadline)
    if vector is None or vectors is None:
        if not covered(share):
            return []
        hits = _lexical_hits(conn, terms, counts, scope)
        scores = lexical_scores(hits, _document_bm25(conn, terms, scope))
    else:
        lexical = _lexical_hits(conn, terms, counts, scope)
        hits = _with_cosines(conn, vectors, vector, lexical, scope)
        if not covered(share, max((h.cosine for h in hits), default=0.0)):
            return []
        doc_ids = {hit.doc_id for hit in hits}
        scores = hybrid_scores(
            hits,
            _document_bm25(conn, terms, scope),
            vectors.document_cosines(conn, vector, doc_ids),
        )
    top = best_first(scores, k)
    return [(row, scores[row[-1]]) for row in chunk_rows(conn, top)]


@dataclass(frozen=True)
class Counts:
    """How many rows hold each term: in the search's collections, and in the whole table
    (the same numbers without a scope)."""

    permitted: dict[str, int]
    whole: dict[str, int]

    def __getitem__(self, term: str) -> int:
        return self.permitted[term]


def _counts(
    conn: sqlite3.Connection, table: Table, terms: Sequence[str], scope: Scope | None
) -> Counts:
    """How many rows of `table` hold each term (in its question columns)."""
    if not terms:
        return Counts({}, {})
    whole = [f"{table.columns}: {term}" for term in terms]
    if scope is None:
        # One statement for all the terms: a statement per term costs a round of Python
        # and statement-cache overhead each (the text is the same for the same term count).
        count = _COUNT.format(table=table.name)
        found = conn.execute(f"SELECT {', '.join([count] * len(terms))}", whole).fetchone()
        numbers = dict(zip(terms, found, strict=True))
        return Counts(numbers, numbers)
    permitted = [matching([term], table.columns, scope.collections) for term in terms]
    found = scope.known.counts(conn, scope.version, table.name, permitted + whole)
    return Counts(
        dict(zip(terms, found[: len(terms)], strict=True)),
        dict(zip(terms, found[len(terms) :], strict=True)),
    )


def _coverage(
    conn: sqlite3.Connection, terms: Sequence[str], counts: Counts, scope: Scope | None
) -> float:
    """The largest idf-weighted share of the terms one document holds (relevance.py)."""
    if scope is None:
        total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    else:
        total = scope.size.chunks
    if not total:
        return 0.0
    collections = None if scope is None else scope.collections
    holders = [
        [
            doc_id
            for (doc_id,) in conn.execute(_HOLDERS, (matching([term], DOCUMENT_TEXT, collections),))
        ]
        if counts[term]
        else []
        for term in terms
    ]
    return coverage([idf(total, counts[term]) for term in terms], holders)


def _lexical_hits(
    conn: sqlite3.Connection, terms: Sequence[str], counts: Counts, scope: Scope | None
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
    if scope is not None:
        return _limited_hits(conn, terms, present, rare, counts, scope)
    match = matching(terms, CHUNK_TEXT, None)
    if len(rare) == len(present):
        found = conn.execute(_SEARCH, (match, TOP_HITS)).fetchall()
    else:
        gate = matching(rare, CHUNK_TEXT, None)
        found = conn.execute(_GATED_SEARCH, (match, gate, TOP_HITS)).fetchall()
    return [Hit(pk, doc_id, seq, lexical=score) for pk, doc_id, seq, score in found]


def _limited_hits(
    conn: sqlite3.Connection,
    terms: Sequence[str],
    present: Sequence[str],
    rare: Sequence[str],
    counts: Counts,
    scope: Scope,
) -> list[Hit]:
    """The same hits as `_lexical_hits` in a store of only the scope's collections: the
    rows of the scope holding the rarest terms (all its matching rows when they are few),
    each term's bm25() read on those rows, and BM25 recomputed with the scope's
    statistics (sqlite_scope.exact_scores); the best TOP_HITS, ties by rowid."""
    gate = matching(rare, CHUNK_TEXT, scope.collections)
    [(candidates,)] = conn.execute(_CANDIDATES, (gate,)).fetchall()
    ids, scores = _rescored(conn, CHUNKS, terms, candidates, counts, scope)
    best = _best(ids, scores, TOP_HITS)
    return [Hit(pk, doc_id, seq, lexical=best[pk]) for pk, doc_id, seq in _places(conn, list(best))]


def _best(ids: np.ndarray, scores: np.ndarray, n: int) -> dict[int, float]:
    """The `n` best rowids and their scores, ties by rowid (`ids` ascending)."""
    import numpy as np  # loaded by a limited search's layout already

    # A stable sort of the rowid-ordered rows by descending score keeps ties by rowid.
    order = np.argsort(-scores, kind="stable")[:n]
    return dict(zip(ids[order].tolist(), scores[order].tolist(), strict=True))


def _rescored(
    conn: sqlite3.Connection,
    table: Table,
    terms: Sequence[str],
    rows: str | None,
    counts: Counts,
    scope: Scope,
) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, -bm25) by the scope's statistics of `rows` (a JSON list), or of all the
    scope's rows holding a term (None): each term's bm25() read on them, then recomputed
    (sqlite_scope.exact_scores)."""
    found = {
        term: term_rows(conn, table, term, scope.collections, rows)
        for term in terms
        if counts.permitted[term]
    }
    whole = Statistics(*table_size(conn, table.name), counts.whole)
    permitted = Statistics(*scope.size.of(table.name), counts.permitted)
    return exact_scores(table, terms, found, whole, permitted, scope.layout.lengths[table.name])


def _document_bm25(
    conn: sqlite3.Connection, terms: Sequence[str], scope: Scope | None
) -> dict[str, float]:
    """Each matching document's -bm25 over all its text (with a scope, of its collections'
    documents, by their statistics)."""
    if scope is None:
        match = matching(terms, DOCUMENT_TEXT, None)
        return {doc_id: score for doc_id, score in conn.execute(_DOCUMENT_BM25, (match,))}
    counts = _counts(conn, DOCUMENTS, terms, scope)
    ids, scores = _rescored(conn, DOCUMENTS, terms, None, counts, scope)
    documents = scope.layout.documents
    return {
        documents[rowid]: score for rowid, score in zip(ids.tolist(), scores.tolist(), strict=True)
    }


def _with_cosines(
    conn: sqlite3.Connection,
    vectors: VectorLeg,
    vector: np.ndarray,
    hits: list[Hit],
    scope: Scope | None = None,
) -> list[Hit]:
    """The BM25 hits and the nearest chunks (of the scope's collections) together, each
    with its cosine."""
    collections = None if scope is None else scope.collections
    nearest = dict(vectors.nearest(conn, vector, TOP_HITS, collections))
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
