"""A SQLite search limited to some collections (bot/readers.py): the filter inside each
MATCH, and BM25 with the statistics of those collections alone.

Each chunk and each document is indexed with its collection as one token in a column of
its own, so "only these collections" is one more term of the same full-text query, never
a filter applied to the results. FTS5's bm25() takes its statistics (rows, average length,
rows holding a term) from the whole table, which would rank a restricted sender's
passages by what the forbidden ones contain, and differently from a store that holds only
the permitted ones. So a restricted search re-scores its candidates: each term's bm25()
alone gives back the term's weighted count in each row (its only unknown, with the row's
length from the index's own size table), and the same formula, evaluated in the same
order as FTS5's, then runs with the permitted collections' statistics. The scores are
those a store holding only those collections computes, to the last bit.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bot.errors import KnowledgeUnavailable

logger = logging.getLogger(__name__)

# The token of a collection: its name in hex, one token whatever the name holds, and
# never split or merged with another by the tokenizer (names are ASCII; see collection_token).
TOKEN_SQL = "lower(hex({column}))"
# What a question's terms are matched in: never the collection column, or a question
# holding a collection's token would match and weigh every row of it.
CHUNK_TEXT = "{text title speakers}"
DOCUMENT_TEXT = "{text title}"
K1, B = 1.2, 0.75  # FTS5's bm25() constants
MIN_IDF = 1e-6  # FTS5's floor for a term in more than half of the rows
_SCHEMA_KEY = "collections"  # in meta once the indexes carry collections


def collection_token(name: str) -> str:
    """The token a collection is indexed as (what TOKEN_SQL computes in SQL)."""
    return name.encode("utf-8").hex()


def within(collections: Iterable[str]) -> str:
    """The MATCH clause keeping rows of these collections (call with at least one)."""
    tokens = " OR ".join(f'"{collection_token(name)}"' for name in sorted(collections))
    return f"{{collection}}: ({tokens})"


def matching(terms: Sequence[str], columns: str, collections: frozenset[str] | None) -> str:
    """The MATCH expression of a question's terms, limited to `collections` when given."""
    match = f"{columns}: ({' OR '.join(terms)})"
    return match if collections is None else f"({match}) AND {within(collections)}"


# -- the schema change ----------------------------------------------------------------


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def has_collections(conn: sqlite3.Connection) -> bool:
    """Whether the store's tables carry collections (a new store does from the start)."""
    fts = _columns(conn, "chunk_fts")
    return "collection" in _columns(conn, "documents") and (not fts or "collection" in fts)


def add_collections_once(
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
    index_schema: str,
    changed: Callable[[sqlite3.Connection], None],
) -> None:
    """Give a store made before collections its collection column and indexes, in one
    write transaction (every document is in "general"); another process that finds it
    done goes on, and so does one that cannot wait for the process doing it (its searches
    fail, and say so, until that one is done)."""
    try:
        with transaction() as conn:
            if has_collections(conn):
                return
            if "collection" not in _columns(conn, "documents"):
                conn.execute(
                    "ALTER TABLE documents ADD COLUMN collection TEXT NOT NULL DEFAULT 'general'"
                )
            for statement in (
                "DROP TABLE chunk_fts",
                "DROP VIEW chunk_search",
                "DROP TABLE doc_fts",
            ):
                conn.execute(statement)
            # One statement at a time: executescript would commit the transaction first.
            for statement in filter(str.strip, index_schema.split(";\n")):
                conn.execute(statement)
            conn.execute("INSERT INTO chunk_fts (chunk_fts) VALUES ('rebuild')")
            conn.execute("DELETE FROM meta WHERE key = 'doc_fts'")  # filled again next
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')", (_SCHEMA_KEY,))
            changed(conn)
    except KnowledgeUnavailable as exc:
        logger.warning("collections not added to the knowledge store here (%s)", exc)


# -- statistics -----------------------------------------------------------------------


def _varints(blob: bytes) -> list[int]:
    """The SQLite varints of an FTS5 record (sizes and totals)."""
    values, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


def row_size(blob: bytes) -> int:
    """A row's length in tokens, all columns (what bm25() calls D), from its size record."""
    # Every column under 128 tokens, the usual case, is one byte each.
    return sum(blob) if blob.isascii() else sum(_varints(blob))


def table_size(conn: sqlite3.Connection, table: str) -> tuple[int, int]:
    """(rows, tokens) of a whole FTS5 table, as its bm25() reads them."""
    row = conn.execute(f"SELECT block FROM {table}_data WHERE id = 1").fetchone()
    values = _varints(row[0]) if row and row[0] else []
    return (values[0], sum(values[1:])) if values else (0, 0)


@dataclass(frozen=True)
class Size:
    """One collection's rows and tokens in the chunk index and in the document index."""

    chunks: int = 0
    chunk_tokens: int = 0
    documents: int = 0
    document_tokens: int = 0

    def of(self, table: str) -> tuple[int, int]:
        """(rows, tokens) in `table` ("chunk_fts" or "doc_fts")."""
        if table == "chunk_fts":
            return self.chunks, self.chunk_tokens
        return self.documents, self.document_tokens

    def __add__(self, other: Size) -> Size:
        return Size(
            self.chunks + other.chunks,
            self.chunk_tokens + other.chunk_tokens,
            self.documents + other.documents,
            self.document_tokens + other.document_tokens,
        )


_ROWS = """
SELECT d.collection, s.id, s.sz, c.doc_id FROM {table}_docsize s
JOIN chunks c ON c.pk = s.id JOIN documents d ON d.id = c.doc_id
"""
_COUNT = "(SELECT count(*) FROM {table} WHERE {table} MATCH ?)"
MAX_COUNTS = 50_000  # cached term counts per process (a few MB); cleared when full


@dataclass(frozen=True)
class Layout:
    """The store at one version as a limited search needs it: each collection's Size, each
    row's length in tokens (by rowid, per table), and the document of each row of doc_fts."""

    sizes: dict[str, Size]
    lengths: dict[str, Any]  # table name -> numpy array of lengths, indexed by rowid
    documents: dict[int, str]


class Known:
    """What a limited search reads again and again, per store version: the Layout (150 ms
    at 100,000 chunks, paid by the first limited search after a change, and 4 bytes a
    chunk) and the rows holding a term (a full-text count scans the term's whole list, and
    questions share their common words)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = ""
        self._layout = Layout({}, {}, {})
        self._counts: dict[tuple[str, str], int] = {}

    def layout(self, conn: sqlite3.Connection, version: str) -> Layout:
        """The store's Layout at `version`, read (in the caller's snapshot) when it is new."""
        with self._lock:
            if self._version != version:
                self._layout = self._read(conn)
                self._counts = {}
                self._version = version
            return self._layout

    def counts(
        self, conn: sqlite3.Connection, version: str, table: str, matches: Sequence[str]
    ) -> list[int]:
        """How many rows of `table` each MATCH expression finds."""
        with self._lock:
            known = self._counts if self._version == version else {}
            found = [known.get((table, match)) for match in matches]
        missing = [match for match, n in zip(matches, found, strict=True) if n is None]
        if missing:
            # One statement for all: a statement each costs a round of Python and of the
            # statement cache (the text is the same for the same number of terms).
            count = _COUNT.format(table=table)
            values = conn.execute(f"SELECT {', '.join([count] * len(missing))}", missing)
            new = dict(zip(missing, values.fetchone(), strict=True))
            with self._lock:
                if self._version == version:
                    if len(self._counts) > MAX_COUNTS:
                        self._counts = {}
                    self._counts.update({(table, m): n for m, n in new.items()})
            found = [new[m] if n is None else n for m, n in zip(matches, found, strict=True)]
        return found  # type: ignore[return-value]

    @staticmethod
    def _read(conn: sqlite3.Connection) -> Layout:
        # Imported here: numpy (about 20 MB per process) only once a limited search runs.
        import numpy as np

        counts: dict[str, list[int]] = {}
        lengths: dict[str, Any] = {}
        documents: dict[int, str] = {}
        for slot, table in ((0, "chunk_fts"), (2, "doc_fts")):
            rows = conn.execute(_ROWS.format(table=table)).fetchall()
            by_row = np.zeros(max((row[1] for row in rows), default=0) + 1, dtype=np.int32)
            for name, rowid, blob, doc_id in rows:
                length = row_size(blob)
                by_row[rowid] = length
                found = counts.setdefault(name, [0, 0, 0, 0])
                found[slot] += 1
                found[slot + 1] += length
                if slot:
                    documents[rowid] = doc_id
            lengths[table] = by_row
        sizes = {name: Size(*values) for name, values in counts.items()}
        return Layout(sizes, lengths, documents)


def permitted_size(layout: Layout, collections: frozenset[str]) -> Size | None:
    """The permitted collections' Size together; None when they hold every stored chunk
    (the store's own statistics are theirs: no need to limit anything)."""
    if collections >= layout.sizes.keys():
        return None
    total = Size()
    for name in collections:
        total += layout.sizes.get(name, Size())
    return total


def idf(rows: int, holding: int) -> float:
    """FTS5's inverse document frequency, as bm25() computes it."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5))
    return value if value > 0.0 else MIN_IDF


@dataclass(frozen=True)
class Statistics:
    """What BM25 needs of a table: its rows, their tokens, and the rows holding each term."""

    rows: int
    tokens: int
    holding: dict[str, int]

    @property
    def average(self) -> float:
        return float(self.tokens) / float(self.rows) if self.rows else 1.0


# `+rowid`: filter the term's list as it is read; a lookup per listed row costs far more.
_LISTED_ROWS = """
SELECT rowid, {bm25} FROM {table}
WHERE {table} MATCH ? AND +rowid IN (SELECT value FROM json_each(?))
"""


@dataclass(frozen=True)
class Table:
    """An FTS5 table as a limited search reads it: its bm25() weights and the columns a
    question's terms are matched in."""

    name: str
    weights: tuple[float, ...]
    columns: str

    @property
    def bm25(self) -> str:
        return f"bm25({self.name}, {', '.join(map(str, self.weights))})"


def term_rows(
    conn: sqlite3.Connection,
    table: Table,
    term: str,
    collections: frozenset[str],
    only: str | None = None,
) -> list[tuple[int, float]]:
    """(rowid, bm25() of `term` alone) of the rows of `collections` holding it; with
    `only` (their rowids as a JSON list), of those rows (all already permitted)."""
    if only is not None:
        sql = _LISTED_ROWS.format(bm25=table.bm25, table=table.name)
        return conn.execute(sql, (f"{table.columns}: {term}", only)).fetchall()
    # The collection terms weigh 0 in bm25(): each adds exactly 0.0 to the term's score.
    sql = f"SELECT rowid, {table.bm25} FROM {table.name} WHERE {table.name} MATCH ?"
    return conn.execute(sql, (matching([term], table.columns, collections),)).fetchall()


def exact_scores(
    table: Table,
    terms: Sequence[str],
    found: dict[str, list[tuple[int, float]]],
    whole: Statistics,
    permitted: Statistics,
    lengths: Any,
) -> tuple[Any, Any]:
    """(rowids, -bm25) as numpy arrays, rowids ascending, of the rows `found` says hold the
    OR of `terms` (each term's bm25() alone, with the whole table's statistics, as FTS5
    computes it), recomputed with the `permitted` statistics (`lengths`: each row's, by
    rowid): bit for bit what a table holding only the permitted rows gives (the same
    formula in the same order; the weights are whole numbers, so each term's weighted
    count in a row is recovered exactly)."""
    import numpy as np  # loaded with the Layout

    pairs = {term: np.array(rows, dtype=np.float64) for term, rows in found.items() if rows}
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0)
    ids = np.unique(np.concatenate([p[:, 0] for p in pairs.values()]).astype(np.int64))
    length = lengths[ids].astype(np.float64)
    # bm25() divides each count by k1 (1 - b + b D / avgdl): with the whole table's average
    # as FTS5 computed it, and with the permitted rows' as their own table would. Array by
    # array, the same operations in the same order as FTS5's C: the same bits.
    as_computed = K1 * (1 - B + B * length / whole.average)
    as_permitted = K1 * (1 - B + B * length / permitted.average)
    scores = np.zeros(len(ids))
    top = K1 + 1.0
    # Term by term, in the question's order, as FTS5 sums them: a term a row lacks adds
    # exactly 0.0 there, so leaving it out changes no bit.
    for term in terms:
        if (holding := pairs.get(term)) is None:
            continue
        computed = idf(whole.rows, whole.holding[term])
        weight = idf(permitted.rows, permitted.holding[term])
        at = np.searchsorted(ids, holding[:, 0].astype(np.int64))
        # One term's bm25 = idf f (k1 + 1) / (f + norm), solved for f (a whole number).
        h = -holding[:, 1] / computed
        f = np.round(h * as_computed[at] / (top - h))
        scores[at] += weight * ((f * top) / (f + as_permitted[at]))
    kept = scores > 0.0
    return ids[kept], scores[kept]
