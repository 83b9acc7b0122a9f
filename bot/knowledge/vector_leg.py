"""The vector leg of the SQLite knowledge store: chunk embeddings at ingest (reused while a
chunk's text is unchanged) and each document's vector made from them, the question's
within a share of its deadline, and the cosines the ranking (sqlite_search) asks for.

Each process holds only the sign bits of the vectors (vector_index.py); the int8
components of the best candidates are read from the file for the re-rank.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from bot.deadline import Deadline
from bot.embedding import Embedder
from bot.errors import EmbeddingFailed, KnowledgeUnavailable
from bot.knowledge import sqlite_vectors as sql
from bot.knowledge.sqlite_vectors import Code, VectorStatus
from bot.knowledge.store import Document
from bot.knowledge.vector_index import BinaryIndex, by_cosine, centroid, quantise

logger = logging.getLogger(__name__)

# The Hamming scan keeps this many candidates per vector hit wanted, and at least
# MIN_RESCORE, for the int8 re-rank. Fetching and re-ranking them is most of a search at
# 100,000 chunks: 10 per hit for the ranking's 100 hits cost 47 ms a search, 3 cost 15.
RESCORE = 3
MIN_RESCORE = 200
WRITE_SECONDS = 120.0  # embedding one batch of chunks at ingest (offline)
# After a failed embedding at ingest, documents are stored without vectors for this long
# instead of each batch waiting out its own retries (`ingest --reembed` fills them in).
EMBED_BACKOFF_SECONDS = 300.0
REBUILD_BATCH = 256  # chunks read, embedded and written per step of a rebuild
QUESTION_CHARS = 2000  # a pasted essay needs only its start embedded

Connect = Callable[[], AbstractContextManager[sqlite3.Connection]]


_COLLECTION_OF = """
SELECT c.pk, d.collection FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.pk
"""


@dataclass(frozen=True)
class _Collections:
    """The collection of each row of the scan index, as a number into `names`."""

    names: list[str]
    of_row: np.ndarray

    @classmethod
    def of(cls, conn: sqlite3.Connection, pks: np.ndarray) -> _Collections:
        """For the index's rows (pks ascending), read when the index is (re)loaded."""
        rows = conn.execute(_COLLECTION_OF).fetchall()
        names = sorted({name for _, name in rows})
        number = {name: i for i, name in enumerate(names)}
        known = np.fromiter((pk for pk, _ in rows), dtype=np.int64, count=len(rows))
        each = np.fromiter((number[name] for _, name in rows), dtype=np.int32, count=len(rows))
        at = np.searchsorted(known, pks)
        # A chunk removed since the index was read is in no collection.
        found = (at < len(known)) & (known[np.minimum(at, len(known) - 1)] == pks)
        return cls(names, np.where(found, each[np.minimum(at, len(known) - 1)], -1))

    def mask(self, collections: frozenset[str]) -> np.ndarray:
        """Which rows belong to one of `collections`."""
        wanted = [i for i, name in enumerate(self.names) if name in collections]
        return np.isin(self.of_row, wanted)


@dataclass(frozen=True)
class _Scan:
    """The in-memory scan of one store version: the sign bits and each row's collection."""

    index: BinaryIndex
    places: _Collections


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild of the vectors did."""

    model: str
    embedded: int  # chunks sent to the embedder
    reused: int  # chunks given a stored vector of the same text and model
    replaced: int  # vectors of other models there were (each replaced, or dropped)


class VectorLeg:
    """Vectors for one SQLite store and one embedder; holds the in-memory scan index."""

    def __init__(
        self,
        embedder: Embedder,
        connection: Connect,
        transaction: Connect,
        changed: Callable[[sqlite3.Connection], None],
    ) -> None:
        self.embedder = embedder
        self.model = sql.signature(embedder.name, embedder.dimensions)
        self._connection, self._transaction = connection, transaction
        self._changed = changed  # bumps the store's version (the answer cache's key)
        self._lock = threading.Lock()  # one thread (re)loads the index, the others wait
        self._scan = _Scan(BinaryIndex.load([], 0), _Collections([], np.empty(0, np.int32)))
        self._loaded: str | None = None  # the store version the index was loaded at
        self._warned: str | None = None  # the other model a mismatch was logged for
        self._embed_after = 0.0  # monotonic time before which writes embed nothing

    # -- questions -------------------------------------------------------------------
    def question(
        self, conn: sqlite3.Connection, query: str, deadline: Deadline
    ) -> np.ndarray | None:
        """The question's unit vector, or None for full-text only: no vectors of this
        model, or the embedding failed or ran out of its share of the deadline."""
        version, stored = sql.state(conn)
        if stored != self.model:
            if stored is not None and self._warned != stored:
                self._warned = stored
                logger.warning(
                    "knowledge vectors are %s, the embedder is %s: full-text only until "
                    "flask --app app ingest --reembed",
                    stored,
                    self.model,
                )
            return None
        if not self._index_at(conn, version, deadline):
            return None
        share = deadline.child(seconds=deadline.remaining() / 2)
        try:
            [vector] = self.embedder.embed([query[:QUESTION_CHARS]], share)
            quantise([vector], self.embedder.dimensions)  # checks size and values
        except EmbeddingFailed as exc:
            logger.warning("question embedding failed (%s): full-text only", exc.reason)
            return None
        except ValueError:
            logger.warning("question embedding of the wrong shape: full-text only")
            return None
        unit = np.asarray(vector, dtype=np.float32)
        return unit / (np.linalg.norm(unit) or 1.0)

    def _index_at(self, conn: sqlite3.Connection, version: str, deadline: Deadline) -> int:
        """The index, reloaded when the store changed; its size. A thread that cannot wait
        for another's reload uses the old index: a removed chunk drops out at the re-rank."""
        if self._loaded != version and self._lock.acquire(timeout=deadline.remaining()):
            try:
                if self._loaded != version:
                    total = sql.count(conn, self.model)
                    index = BinaryIndex.load(sql.bits(conn, self.model), total)
                    # One object, swapped at once: a mask must never meet another index.
                    self._scan = _Scan(index, _Collections.of(conn, index.pks))
                    self._loaded = version
            finally:
                self._lock.release()
        return len(self._scan.index)

    def nearest(
        self,
        conn: sqlite3.Connection,
        vector: np.ndarray,
        limit: int,
        collections: frozenset[str] | None = None,
    ) -> list[tuple[int, float]]:
        """(pk, cosine) of the `limit` chunks nearest to `vector` (of `collections` only,
        when given), best first: a Hamming scan, then the cosine on the int8 components of
        its candidates."""
        [(bits, _)] = quantise([vector], self.embedder.dimensions)
        scan = self._scan  # read once: another thread may swap in a reloaded one
        only = None if collections is None else scan.places.mask(collections)
        candidates = scan.index.nearest(bits, max(MIN_RESCORE, limit * RESCORE), only)
        if not candidates:
            return []
        return by_cosine(vector, sql.int8_rows(conn, self.model, candidates))[:limit]

    def cosines(
        self, conn: sqlite3.Connection, vector: np.ndarray, pks: Sequence[int]
    ) -> dict[int, float]:
        """The cosine of each of these chunks that has a vector of this model."""
        return dict(by_cosine(vector, sql.int8_rows(conn, self.model, pks))) if pks else {}

    def document_cosines(
        self, conn: sqlite3.Connection, vector: np.ndarray, doc_ids: Iterable[str]
    ) -> dict[str, float]:
        """The cosine of each of these documents that has a document vector of this model."""
        rows = sql.document_vectors(conn, self.model, list(doc_ids))
        return dict(by_cosine(vector, rows))

    # -- writes ----------------------------------------------------------------------
    def prepare(self, docs: Sequence[Document]) -> list[dict[int, Code]]:
        """Each document's codes by chunk seq: stored ones reused, the rest embedded at once.
        When the embedding fails, the chunks it was for get none (full-text only)."""
        texts = [sql.embedded_text(doc.title, c.text) for doc in docs for c in doc.chunks]
        codes, _ = self._codes(texts, Deadline(WRITE_SECONDS), required=False)
        found: list[dict[int, Code]] = []
        start = 0
        for doc in docs:
            mine = codes[start : start + len(doc.chunks)]
            found.append({c.seq: code for c, code in zip(doc.chunks, mine, strict=True) if code})
            start += len(doc.chunks)
        return found

    def write(self, conn: sqlite3.Connection, doc_id: str, codes: dict[int, Code]) -> None:
        """Store a document's codes and its vector, inside the transaction that wrote its
        chunks."""
        sql.write_document(conn, doc_id, self.model, codes)
        self._sum(conn, [doc_id])

    def _sum(self, conn: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        """Make these documents' vectors from their chunks' stored ones."""
        for doc_id in doc_ids:
            total = centroid(sql.chunk_components(conn, self.model, doc_id))
            q = None if total is None else quantise([total], self.embedder.dimensions)[0][1]
            sql.write_document_vector(conn, doc_id, self.model, q)

    def _codes(
        self, texts: list[str], deadline: Deadline, required: bool = True
    ) -> tuple[list[Code | None], int]:
        """A code per text (None where the embedding failed and is not `required`: else
        KnowledgeUnavailable), and how many texts were embedded."""
        keys = [sql.text_key(self.model, text) for text in texts]
        with self._connection() as conn:
            found: dict[bytes, Code | None] = dict(sql.known(conn, keys))
        new = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if not new or (not required and time.monotonic() < self._embed_after):
            return [found.get(key) for key in keys], 0
        try:
            vectors = self.embedder.embed(list(new.values()), deadline)
            quantised = quantise(vectors, self.embedder.dimensions)
        except (EmbeddingFailed, ValueError) as exc:
            reason = exc.reason if isinstance(exc, EmbeddingFailed) else str(exc)
            if required:
                raise KnowledgeUnavailable(f"embeddings failed: {reason}") from None
            self._embed_after = time.monotonic() + EMBED_BACKOFF_SECONDS
            logger.warning(
                "embeddings failed (%s): chunks stored without vectors, found by full text "
                "only until flask --app app ingest --reembed",
                reason,
            )
            return [found.get(key) for key in keys], 0
        for key, (bits, q) in zip(new, quantised, strict=True):
            found[key] = Code(key, bits, q)
        return [found[key] for key in keys], sum(key in new for key in keys)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> Rebuilt:
        """Give every chunk without a vector of this model one, batch by batch (each batch
        committed: an interrupted rebuild resumes where it stopped), and its document a
        vector made from its chunks'; then give any document still without one its vector,
        make this model the store's, drop other models' vectors, and mark the store
        changed."""
        after = embedded = reused = 0
        with self._connection() as conn:
            others = sql.others(conn, self.model)
        while True:
            with self._connection() as conn:
                rows = sql.missing(conn, self.model, after, REBUILD_BATCH)
            if not rows:
                with self._transaction() as conn:
                    self._sum(conn, sql.unsummed(conn, self.model))
                    sql.adopt(conn, self.model)
                    self._changed(conn)
                return Rebuilt(self.model, embedded, reused, others)
            after = rows[-1][0]
            texts = [sql.embedded_text(title, text) for _, title, text in rows]
            codes, new = self._codes(texts, Deadline(WRITE_SECONDS))
            with self._transaction() as conn:
                sql.write_rebuilt(conn, self.model, rows, codes)
                self._sum(conn, sql.documents_of(conn, [pk for pk, _, _ in rows]))
            embedded, reused = embedded + new, reused + len(rows) - new
            if progress is not None:
                progress(embedded + reused)

    @property
    def index_bytes(self) -> int:
        """The memory the scan index holds in this process."""
        return self._scan.index.nbytes

    def status(self) -> VectorStatus:
        """The store's model and how many chunks have a vector of this one (for `check`)."""
        with self._connection() as conn:
            return sql.status(conn, self.model)

    # -- processes -------------------------------------------------------------------
    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        reset = getattr(self.embedder, "after_fork", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Close the embedder's connections."""
        self.embedder.close()
