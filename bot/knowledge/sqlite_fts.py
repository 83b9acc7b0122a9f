"""The embedded knowledge store: SQLite with FTS5 (BM25) indexes over chunks and whole
documents (sqlite_doc_fts), searched by sqlite_search; vectors by vector_leg."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot.deadline import Deadline
from bot.embedding import Embedder
from bot.errors import KnowledgeUnavailable
from bot.knowledge import sqlite_doc_fts, sqlite_locations, sqlite_scope, sqlite_search
from bot.knowledge.fts_query import build_match_query, fts_term, query_words
from bot.knowledge.sqlite_vectors import SCHEMA as VECTOR_SCHEMA
from bot.knowledge.store import Document, DocumentInfo, Readable
from bot.models import Passage
from bot.readers import DEFAULT_COLLECTION
from bot.sqlite_pool import DEFAULT_SIZE, SqlitePool, use_wal

if TYPE_CHECKING:
    from bot.knowledge.vector_leg import VectorLeg

# build_match_query is re-exported: callers and tests import it from here.
__all__ = ["SqliteKnowledgeStore", "build_match_query", "source_label"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# How long an operation given no deadline (ingest, counts, /health) may wait for a pooled
# connection: as long as it may wait for the file lock.
WAIT_SECONDS = BUSY_TIMEOUT_MS / 1000
MAX_K = 100
_PROGRESS_STEPS = 1000  # SQLite VM steps between deadline checks: cheap, and ~sub-ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
    date TEXT NOT NULL, sha256 TEXT NOT NULL, people TEXT NOT NULL DEFAULT '[]',
    updated_at REAL NOT NULL DEFAULT 0, collection TEXT NOT NULL DEFAULT 'general');
CREATE TABLE IF NOT EXISTS chunks (
    pk INTEGER PRIMARY KEY,  -- explicit, so VACUUM keeps the FTS rowids valid
    id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT NOT NULL, speakers TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id, seq);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '0');
"""
# The FTS index reads its content from this view, so text is stored once. Its last column
# is the document's collection as one token (sqlite_scope.py), so a search limited to some
# collections is one more term of the same MATCH.
_TOKEN = sqlite_scope.TOKEN_SQL.format(column="d.collection")
_CHUNK_INDEX = f"""
CREATE VIEW IF NOT EXISTS chunk_search AS
    SELECT c.pk AS pk, c.doc_id AS doc_id, c.text AS text, d.title AS title,
           c.speakers AS speakers, {_TOKEN} AS collection
    FROM chunks c JOIN documents d ON d.id = c.doc_id;
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5(
    text, title, speakers, collection, content='chunk_search', content_rowid='pk',
    tokenize='porter unicode61 remove_diacritics 2');
"""

# External content: a row is removed with the exact values it was indexed with, read from
# the view before the chunks, the title or the collection change.
_INDEX_CHUNKS = (
    "INSERT INTO chunk_fts (rowid, text, title, speakers, collection) "
    "SELECT pk, text, title, speakers, collection FROM chunk_search WHERE doc_id = ?"
)
_UNINDEX_CHUNKS = (
    "INSERT INTO chunk_fts (chunk_fts, rowid, text, title, speakers, collection) "
    "SELECT 'delete', pk, text, title, speakers, collection FROM chunk_search WHERE doc_id = ?"
)

_VERSION = "SELECT key, value FROM meta WHERE key IN ('instance', 'version')"
_LISTING = """
SELECT d.id, d.title, d.source, d.kind, d.date,
       (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id), d.updated_at, d.collection,
       d.sha256
FROM documents d ORDER BY d.source, d.id
"""

# One spelling per name (the first stored), ranked by the documents that name it.
_PEOPLE = """
SELECT min(p.value) FROM documents, json_each(documents.people) p
WHERE ?1 IS NULL OR documents.collection IN (SELECT value FROM json_each(?1))
GROUP BY lower(p.value) ORDER BY count(*) DESC, lower(p.value) LIMIT ?2
"""


def _set_up(conn: sqlite3.Connection) -> None:
    """Each new connection: WAL, so readers never block the ingest writer."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")


def source_label(title: str, date: str, location: str = "") -> str:
    """The human label users see: "Title (2026-03-04)" or "Title", then ", p. 3" or
    ", Budget" for a chunk of a PDF page or under a Word heading."""
    label = f"{title} ({date})" if date else title
    return f"{label}, {location}" if location else label


class SqliteKnowledgeStore:
    """KnowledgeStore on SQLite FTS5; a bounded pool of connections shared by threads, WAL."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        pool_size: int = DEFAULT_SIZE,
        embedder: Embedder | None = None,
        relevance_floor: bool = False,
    ) -> None:
        self.path = path
        self.relevance_floor = relevance_floor  # relevance.py: "not found" below it
        self._pool = SqlitePool(path, pool_size, _set_up)
        self.vectors: VectorLeg | None = None  # with an embedder: rebuild(), status()
        if embedder is not None:
            # Imported here: numpy (about 20 MB per process) only when there is an embedder.
            from bot.knowledge.vector_leg import VectorLeg

            self.vectors = VectorLeg(
                embedder, self._connection, self._transaction, changed=self._bump_version
            )
        try:
            with self._connection() as conn:
                # IF NOT EXISTS everywhere: several workers may create the schema at once.
                conn.executescript(_SCHEMA + VECTOR_SCHEMA + sqlite_locations.SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)",
                    (uuid.uuid4().hex[:12],),
                )
                current = sqlite_scope.has_collections(conn)
                if current:
                    conn.executescript(_CHUNK_INDEX + sqlite_doc_fts.SCHEMA)
            if not current:  # a store made before collections
                sqlite_scope.add_collections_once(
                    self._transaction, _CHUNK_INDEX + sqlite_doc_fts.SCHEMA, self._bump_version
                )
            with self._connection() as conn:
                fill = not sqlite_doc_fts.filled(conn)
        except KnowledgeUnavailable:
            self.close()
            raise
        self._known = sqlite_scope.Known()  # collection sizes and term counts, per version
        if fill:  # a store made before the document index (or its collections)
            sqlite_doc_fts.fill_once(self._transaction, changed=self._bump_version)

    # -- connections -----------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for one operation; sqlite3 errors become KnowledgeUnavailable."""
        with self._errors(), self._pool.connection(Deadline(WAIT_SECONDS)) as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate sqlite3 errors into KnowledgeUnavailable."""
        try:
            yield
        except sqlite3.Error as exc:
            logger.warning("knowledge store error: %s", exc)
            raise KnowledgeUnavailable(f"sqlite: {exc}") from exc

    def close(self) -> None:
        """Close every connection (those in use when returned) and the embedder's."""
        self._pool.close()
        if self.vectors is not None:
            self.vectors.close()

    def after_fork(self) -> None:
        """In a gunicorn worker: leave the master's connections alone, open our own."""
        self._pool.after_fork()
        if self.vectors is not None:
            self.vectors.after_fork()

    def __enter__(self) -> SqliteKnowledgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------
    def search(
        self, query: str, k: int, deadline: Deadline, collections: Readable = None
    ) -> list[Passage]:
        """The `k` best chunks for free user text, best first: BM25 lifted by document-level
        evidence, with vectors the cosines too (full-text only when the embedding fails);
        [] when the relevance floor is on and no document covers the question well enough.
        With `collections`, as a store holding only their documents would (sqlite_scope)."""
        terms = [fts_term(word) for word in query_words(query)]
        if not terms or k <= 0 or collections == frozenset():
            return []
        k = min(k, MAX_K)
        if deadline.expired():
            raise KnowledgeUnavailable("timeout")
        try:
            # The pool clears the progress handler (and ends the transaction) when the
            # connection is returned.
            with self._pool.connection(deadline) as conn:
                conn.set_progress_handler(lambda: 1 if deadline.expired() else 0, _PROGRESS_STEPS)
                # One snapshot for the whole search: which collections exist, their sizes
                # and every statement must see the same documents, or a document written
                # meanwhile could pass a filter decided before it existed.
                conn.execute("BEGIN")
                scope = self._scope(conn, collections)
                found = sqlite_search.search(
                    conn, query, terms, k, self.vectors, deadline, self.relevance_floor, scope
                )
                located = sqlite_locations.read(conn, [row[0] for row, _ in found])
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # PoolTimeout included
            if deadline.expired():
                raise KnowledgeUnavailable("timeout") from exc
            logger.warning("knowledge search failed: %s", exc)
            raise KnowledgeUnavailable(f"sqlite: {exc}") from exc
        except sqlite3.Error as exc:
            raise KnowledgeUnavailable(f"sqlite: {exc}") from exc
        return [self._passage(row, score, located.get(row[0], "")) for row, score in found]

    def _scope(self, conn: sqlite3.Connection, collections: Readable) -> sqlite_search.Scope | None:
        """What a search limited to `collections` needs: their sizes, the counts known;
        None for no limit (none asked, or they hold everything)."""
        if collections is None:
            return None
        meta = dict(conn.execute(_VERSION))
        version = f"{meta.get('instance')}:{meta.get('version')}"
        layout = self._known.layout(conn, version)
        size = sqlite_scope.permitted_size(layout, collections)
        if size is None:  # every stored collection: the search of the whole store
            return None
        return sqlite_search.Scope(collections, size, layout, self._known, version)

    @staticmethod
    def _passage(row: tuple, score: float, location: str = "") -> Passage:
        chunk_id, doc_id, text, speakers, title, date, _ = row
        return Passage(
            text=text,
            source=source_label(title, date, location),
            score=max(score, 1e-9),  # strictly positive, as every store's
            document_id=doc_id,
            chunk_id=chunk_id,
            title=title,
            date=date,
            speakers=tuple(json.loads(speakers)),
        )

    def document_sha(self, doc_id: str) -> str | None:
        """The stored sha256 of a document, or None if it is not stored."""
        with self._connection() as conn:
            row = conn.execute("SELECT sha256 FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def documents(self) -> list[DocumentInfo]:
        """Every stored document with its chunk count, ordered by source."""
        with self._connection() as conn:
            rows = conn.execute(_LISTING).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        """{"documents": n, "chunks": n, "people": n} (people: distinct names)."""
        with self._connection() as conn:
            documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            people = conn.execute(
                "SELECT count(DISTINCT lower(p.value)) FROM documents, json_each(people) p"
            ).fetchone()[0]
        return {"documents": documents, "chunks": chunks, "people": people}

    def people(self, limit: int, deadline: Deadline, collections: Readable = None) -> list[str]:
        """Up to `limit` names (of `collections`' documents, when given), those in the most
        documents first."""
        listed = None if collections is None else json.dumps(sorted(collections))
        with self._errors(), self._pool.connection(deadline) as conn:
            rows = conn.execute(_PEOPLE, (listed, limit)).fetchall()
        return [name for (name,) in rows]

    def version(self) -> str:
        """ "{instance}:{counter}": changes on every upsert and removal, and when the file
        is recreated."""
        with self._connection() as conn:
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return f"{rows.get('instance', '')}:{rows.get('version', '0')}"

    def ping(self) -> None:
        """Cheap liveness check; raises KnowledgeUnavailable."""
        with self._connection() as conn:
            conn.execute("SELECT count(*) FROM meta").fetchone()

    # -- writes ----------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (committed, or rolled back on any exception)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _bump_version(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")

    def upsert(self, doc: Document) -> None:
        """Store a document, replacing any earlier version and all of its chunks."""
        self.upsert_many([doc])

    def upsert_many(self, docs: Sequence[Document]) -> None:
        """`upsert` in one transaction; new chunk texts are embedded together, once."""
        codes = self.vectors.prepare(docs) if self.vectors else None  # before the write lock
        with self._transaction() as conn:
            for i, doc in enumerate(docs):
                self._replace(conn, doc)
                if self.vectors and codes:
                    self.vectors.write(conn, doc.id, codes[i])
            self._bump_version(conn)

    def optimize(self) -> None:
        """Merge each full-text index into one segment: an ingest of many batches leaves
        a dozen, and every search looks each term up in each (about 15% of a search's
        SQLite time at 4,000 chunks; 0.3 s of merging at 100,000)."""
        with self._transaction() as conn:
            for table in ("chunk_fts", "doc_fts"):
                conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")

    def move(self, document_ids: Iterable[str], collection: str) -> int:
        """Put these documents in `collection`: their index rows are written again with its
        token (chunks and vectors stay); how many existed."""
        moved = 0
        with self._transaction() as conn:
            for doc_id in dict.fromkeys(document_ids):
                sqlite_doc_fts.unindex(conn, doc_id)
                conn.execute(_UNINDEX_CHUNKS, (doc_id,))
                found = conn.execute(
                    "UPDATE documents SET collection = ?, updated_at = ? WHERE id = ?",
                    (collection, time.time(), doc_id),
                ).rowcount
                conn.execute(_INDEX_CHUNKS, (doc_id,))
                sqlite_doc_fts.index(conn, doc_id)
                moved += found
            if moved:
                self._bump_version(conn)
        return moved

    def remove(self, document_ids: Iterable[str]) -> int:
        """Delete these documents and their chunks; how many existed (the version changes
        when any did, so answers cached from them are no longer served)."""
        removed = 0
        with self._transaction() as conn:
            for doc_id in dict.fromkeys(document_ids):
                self._delete_chunks(conn, doc_id)
                removed += conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,)).rowcount
            if removed:
                self._bump_version(conn)
        return removed

    @staticmethod
    def _delete_chunks(conn: sqlite3.Connection, doc_id: str) -> None:
        sqlite_doc_fts.unindex(conn, doc_id)
        conn.execute(_UNINDEX_CHUNKS, (doc_id,))
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))

    @classmethod
    def _replace(cls, conn: sqlite3.Connection, doc: Document) -> None:
        stored = conn.execute("SELECT collection FROM documents WHERE id = ?", (doc.id,)).fetchone()
        collection = doc.collection or (stored[0] if stored else DEFAULT_COLLECTION)
        cls._delete_chunks(conn, doc.id)
        conn.execute(
            "INSERT INTO documents (id, title, kind, source, date, sha256, people, updated_at,"
            " collection) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " title = excluded.title, kind = excluded.kind, source = excluded.source,"
            " date = excluded.date, sha256 = excluded.sha256, people = excluded.people,"
            " updated_at = excluded.updated_at, collection = excluded.collection",
            (
                doc.id,
                doc.title,
                doc.kind,
                doc.source,
                doc.date,
                doc.sha256,
                json.dumps(list(doc.people)),
                time.time(),
                collection,
            ),
        )
        conn.executemany(
            "INSERT INTO chunks (id, doc_id, seq, text, speakers) VALUES (?, ?, ?, ?, ?)",
            [
                (f"{doc.id}:{c.seq}", doc.id, c.seq, c.text, json.dumps(list(c.speakers)))
                for c in doc.chunks
            ],
        )
        sqlite_locations.write(conn, doc)
        conn.execute(_INDEX_CHUNKS, (doc.id,))
        sqlite_doc_fts.index(conn, doc.id)
