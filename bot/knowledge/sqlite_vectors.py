"""The vector tables of the SQLite knowledge store and the SQL that reads and writes them.

One quantised embedding per chunk (sign bits for the in-memory scan, int8 components for
the re-rank), tagged with the model that made it; one per document (the normalised sum of
its chunks', a ranking signal); and the model the store's vectors belong to in the meta
table. Numpy-free: the schema (and the trigger that drops a deleted chunk's
vector) is there whether or not an embedder is configured.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_vectors (
    pk INTEGER PRIMARY KEY,  -- chunks.pk
    model TEXT NOT NULL,     -- "name/dimensions" of the embedder that made it
    key BLOB NOT NULL,       -- hash of the model and the embedded text: reused while unchanged
    bits BLOB NOT NULL,      -- one sign bit per dimension: the in-memory Hamming scan
    q BLOB NOT NULL);        -- int8 components: the re-rank of the scan's best candidates
-- Covering: loading the scan's bits never reads the 1 KB int8 rows.
CREATE INDEX IF NOT EXISTS chunk_vectors_bits ON chunk_vectors (model, pk, bits);
CREATE INDEX IF NOT EXISTS chunk_vectors_key ON chunk_vectors (key);
-- A replaced or removed chunk takes its vector with it, whichever process deletes it.
CREATE TRIGGER IF NOT EXISTS chunk_vectors_gone AFTER DELETE ON chunks
BEGIN DELETE FROM chunk_vectors WHERE pk = old.pk; END;
-- A document's vector: the normalised sum of its chunks' unit vectors, as int8 components.
CREATE TABLE IF NOT EXISTS document_vectors (
    doc_id TEXT PRIMARY KEY, model TEXT NOT NULL, q BLOB NOT NULL);
-- Stale as soon as one of its chunks goes; the writer that replaces them makes it again.
CREATE TRIGGER IF NOT EXISTS document_vectors_stale AFTER DELETE ON chunks
BEGIN DELETE FROM document_vectors WHERE doc_id = old.doc_id; END;
"""

MODEL_KEY, DIMENSIONS_KEY = "embedding_model", "embedding_dimensions"
_STATE = f"SELECT key, value FROM meta WHERE key IN ('version', '{MODEL_KEY}', '{DIMENSIONS_KEY}')"
_COMPONENTS = """
SELECT v.q FROM chunks c JOIN chunk_vectors v ON v.pk = c.pk
WHERE c.doc_id = ? AND v.model = ? ORDER BY c.seq
"""
# Documents with a chunk vector of the model but no document vector of it.
_UNSUMMED = """
SELECT d.id FROM documents d
WHERE NOT EXISTS (SELECT 1 FROM document_vectors w WHERE w.doc_id = d.id AND w.model = ?)
  AND EXISTS (SELECT 1 FROM chunks c JOIN chunk_vectors v ON v.pk = c.pk
              WHERE c.doc_id = d.id AND v.model = ?)
"""
_MISSING = """
SELECT c.pk, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id
WHERE c.pk > ? AND NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.pk = c.pk AND v.model = ?)
ORDER BY c.pk LIMIT ?
"""
# A chunk changed (or deleted) while its vector was computed keeps out of a rebuild.
_GUARDED_WRITE = """
INSERT OR REPLACE INTO chunk_vectors (pk, model, key, bits, q)
SELECT ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM chunk_search WHERE pk = ? AND title = ? AND text = ?)
"""


@dataclass(frozen=True)
class Code:
    """One chunk's quantised vector, under the key of the text it was made from."""

    key: bytes
    bits: bytes
    q: bytes


@dataclass(frozen=True)
class VectorStatus:
    """What `check` reports: whose vectors the store holds, and for how many chunks."""

    configured: str  # "name/dimensions" of the embedder
    stored: str | None  # the store's model, None before any vector is written
    chunks: int
    with_vectors: int  # chunks holding a vector of the configured model


def signature(name: str, dimensions: int) -> str:
    """The model tag of a vector: its name and its size."""
    return f"{name}/{dimensions}"


def embedded_text(title: str, text: str) -> str:
    """What is embedded for a chunk: its document's title, then its text (as the graph does)."""
    return f"{title}\n{text}"


def text_key(model: str, text: str) -> bytes:
    """The reuse key of an embedded text under one model."""
    return hashlib.sha256(f"{model}\n{text}".encode()).digest()[:16]


def state(conn: sqlite3.Connection) -> tuple[str, str | None]:
    """(content version, the store's vector model or None) in one read."""
    meta = dict(conn.execute(_STATE).fetchall())
    stored = None
    if MODEL_KEY in meta and DIMENSIONS_KEY in meta:
        stored = signature(meta[MODEL_KEY], int(meta[DIMENSIONS_KEY]))
    return meta.get("version", "0"), stored


def claim(conn: sqlite3.Connection, model: str) -> None:
    """Record `model` as the store's unless another model's vectors are still stored."""
    _, stored = state(conn)
    if stored == model:
        return
    if (
        stored is None
        or not conn.execute(
            "SELECT 1 FROM chunk_vectors WHERE model = ? LIMIT 1", (stored,)
        ).fetchone()
    ):
        adopt(conn, model)


def adopt(conn: sqlite3.Connection, model: str) -> int:
    """Make `model` the store's and drop every other model's vectors; how many were dropped."""
    name, dimensions = model.rsplit("/", 1)
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(MODEL_KEY, name), (DIMENSIONS_KEY, dimensions)],
    )
    conn.execute("DELETE FROM document_vectors WHERE model != ?", (model,))
    return conn.execute("DELETE FROM chunk_vectors WHERE model != ?", (model,)).rowcount


def known(conn: sqlite3.Connection, keys: Iterable[bytes]) -> dict[bytes, Code]:
    """The stored codes of these keys (a key names its model, so no other model's match)."""
    found: dict[bytes, Code] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for key, bits, q in conn.execute(
            f"SELECT key, bits, q FROM chunk_vectors WHERE key IN ({marks})", part
        ):
            found[key] = Code(key, bits, q)
    return found


def write_document(
    conn: sqlite3.Connection, doc_id: str, model: str, codes: dict[int, Code]
) -> None:
    """The codes of a document's chunks just written, by chunk seq (some may have none)."""
    pks = conn.execute("SELECT seq, pk FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
    rows = [(pk, model, c.key, c.bits, c.q) for seq, pk in pks if (c := codes.get(seq))]
    conn.executemany(
        "INSERT OR REPLACE INTO chunk_vectors (pk, model, key, bits, q) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    if rows:
        claim(conn, model)


def write_rebuilt(
    conn: sqlite3.Connection,
    model: str,
    rows: Sequence[tuple[int, str, str]],
    codes: Sequence[Code],
) -> None:
    """Codes for (pk, title, text) rows read earlier, for the chunks still holding that text."""
    conn.executemany(
        _GUARDED_WRITE,
        [
            (pk, model, c.key, c.bits, c.q, pk, title, text)
            for (pk, title, text), c in zip(rows, codes, strict=True)
        ],
    )


def missing(conn: sqlite3.Connection, model: str, after: int, limit: int) -> list[tuple]:
    """Up to `limit` (pk, title, text) of chunks past `after` without a vector of `model`."""
    return conn.execute(_MISSING, (after, model, limit)).fetchall()


def others(conn: sqlite3.Connection, model: str) -> int:
    """How many vectors of other models than `model` are stored."""
    return conn.execute("SELECT count(*) FROM chunk_vectors WHERE model != ?", (model,)).fetchone()[
        0
    ]


def count(conn: sqlite3.Connection, model: str) -> int:
    """How many vectors of `model` are stored."""
    return conn.execute("SELECT count(*) FROM chunk_vectors WHERE model = ?", (model,)).fetchone()[
        0
    ]


def bits(conn: sqlite3.Connection, model: str, batch: int = 4096) -> Iterator[list[tuple]]:
    """Every (pk, bits) of `model`, in batches, by pk."""
    cursor = conn.execute(
        "SELECT pk, bits FROM chunk_vectors INDEXED BY chunk_vectors_bits WHERE model = ? "
        "ORDER BY pk",
        (model,),
    )
    while rows := cursor.fetchmany(batch):
        yield rows


def int8_rows(conn: sqlite3.Connection, model: str, pks: Sequence[int]) -> list[tuple]:
    """(pk, q) of these chunks' vectors of `model` (chunks removed since are left out)."""
    marks = ",".join("?" * len(pks))
    return conn.execute(
        f"SELECT pk, q FROM chunk_vectors WHERE pk IN ({marks}) AND model = ?", [*pks, model]
    ).fetchall()


def chunk_components(conn: sqlite3.Connection, model: str, doc_id: str) -> list[bytes]:
    """The int8 components of a document's chunk vectors of `model`."""
    return [q for (q,) in conn.execute(_COMPONENTS, (doc_id, model))]


def write_document_vector(
    conn: sqlite3.Connection, doc_id: str, model: str, q: bytes | None
) -> None:
    """Store a document's vector of `model` (None: it has none)."""
    if q is None:
        conn.execute("DELETE FROM document_vectors WHERE doc_id = ?", (doc_id,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO document_vectors (doc_id, model, q) VALUES (?, ?, ?)",
            (doc_id, model, q),
        )


def document_vectors(
    conn: sqlite3.Connection, model: str, doc_ids: Sequence[str]
) -> list[tuple[str, bytes]]:
    """(doc_id, q) of these documents' vectors of `model` (those without one left out)."""
    if not doc_ids:
        return []
    marks = ",".join("?" * len(doc_ids))
    return conn.execute(
        f"SELECT doc_id, q FROM document_vectors WHERE doc_id IN ({marks}) AND model = ?",
        [*doc_ids, model],
    ).fetchall()


def documents_of(conn: sqlite3.Connection, pks: Sequence[int]) -> list[str]:
    """The distinct documents of these chunks."""
    if not pks:
        return []
    marks = ",".join("?" * len(pks))
    return [
        doc_id
        for (doc_id,) in conn.execute(
            f"SELECT DISTINCT doc_id FROM chunks WHERE pk IN ({marks})", list(pks)
        )
    ]


def unsummed(conn: sqlite3.Connection, model: str) -> list[str]:
    """Documents whose chunks have vectors of `model` but which have no document vector
    of it (a store made before document vectors, or a rebuild interrupted)."""
    return [doc_id for (doc_id,) in conn.execute(_UNSUMMED, (model, model))]


def status(conn: sqlite3.Connection, model: str) -> VectorStatus:
    """The store's model and how many chunks have a vector of `model`."""
    _, stored = state(conn)
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    return VectorStatus(model, stored, chunks, count(conn, model))
