"""The graph knowledge store: Neo4j or FalkorDB over Bolt, full-text + vector + fusion.

One store, one small dialect switch (dialect_neo4j.py, dialect_falkordb.py) for index DDL
and the search procedures. Retrieval is full-text always and vector search when chunks
carry embeddings and an embedder is configured, fused by reciprocal rank. Every failure
of the server or the driver becomes KnowledgeUnavailable, so the use case degrades.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from bot.deadline import Deadline
from bot.embedding import Embedder
from bot.errors import EmbeddingFailed, KnowledgeUnavailable
from bot.knowledge.graph.client import GraphClient, GraphQueryError
from bot.knowledge.graph.dialect_falkordb import FalkorDialect
from bot.knowledge.graph.dialect_neo4j import Neo4jDialect
from bot.knowledge.graph.schema import Dialect, GraphSchema, Statement, read_queries, run
from bot.knowledge.graph.search import (
    custom_passages,
    custom_statement,
    fuse,
    people_passage,
    search_hits,
)
from bot.knowledge.graph.text import best_title_match, is_people_question
from bot.knowledge.graph.write import orphans, remove_document, write_document
from bot.knowledge.store import Document, DocumentInfo
from bot.models import Passage

logger = logging.getLogger(__name__)

DIALECTS: dict[str, Dialect] = {"neo4j": Neo4jDialect(), "falkordb": FalkorDialect()}
# Only FalkorDB lists its `db.idx.*` procedures here; Neo4j 5 removed dbms.procedures().
DETECT_DIALECT = (
    "CALL dbms.procedures() YIELD name WHERE name STARTS WITH 'db.idx.' RETURN count(name) AS n"
)
MAX_K = 100
CANDIDATES = 4  # each search leg fetches k * this many hits for fusion to choose from
WRITE_SECONDS = 120.0  # ingest is offline: one document (embeddings included) gets this long
SMALL_READ_SECONDS = 5.0  # counts and sha lookups (CLI and ingest, not the webhook)
LIST_SECONDS = 60.0  # every document with its chunk count (CLI, ingest --prune, check)
PING_SECONDS = 1.5  # /health must say "down" quickly
VERSION_SECONDS = 1.0  # read before every first-turn answer (answer cache key)
EMBEDDED_CHECK_SECONDS = 60.0  # how long "do chunks carry embeddings?" is remembered


class GraphKnowledgeStore:
    """KnowledgeStore on a Bolt graph database; connects lazily, so start-up never waits."""

    def __init__(
        self,
        client: GraphClient,
        schema: GraphSchema | None = None,
        dialect: str = "auto",
        embedder: Embedder | None = None,
        retrieval_query: str = "",
    ) -> None:
        if dialect not in (*DIALECTS, "auto"):
            raise ValueError(f"unknown graph dialect {dialect!r}")
        self.client = client
        self.schema = schema or GraphSchema()
        self.embedder = embedder
        self.retrieval_query = retrieval_query.strip()
        self._dialect: Dialect | None = DIALECTS.get(dialect)
        self.backend = self._dialect.name if self._dialect else "graph"
        self._queries = read_queries(self.schema)
        self._schema_pid = 0  # the process that made sure the indexes exist
        self._embedded: tuple[float, bool] = (0.0, False)  # (checked at, answer)

    # -- plumbing --------------------------------------------------------------------
    def dialect(self, deadline: Deadline) -> Dialect:
        """The configured dialect, or the detected one ("auto") once connected."""
        if self._dialect is None:
            try:
                rows = self.client.read(lambda tx: tx.run(DETECT_DIALECT).data(), deadline)
                name = "falkordb" if rows and rows[0]["n"] else "neo4j"
            except GraphQueryError:
                name = "neo4j"
            self._dialect = DIALECTS[name]
            self.backend = name
            logger.info("graph dialect detected: %s", name)
        return self._dialect

    def _read(self, query: str, params: dict[str, Any], deadline: Deadline) -> list[dict]:
        dialect = self.dialect(deadline)
        return self.client.read(lambda tx: run(tx, dialect, query, params).data(), deadline)

    def _write(self, statements: list[Statement], deadline: Deadline) -> None:
        dialect = self.dialect(deadline)

        def work(tx: Any) -> None:
            for query, params in statements:
                run(tx, dialect, query, params).consume()

        self.client.write(work, deadline)

    def ensure_schema(self, deadline: Deadline) -> None:
        """Create missing indexes, once per process (again after a failure)."""
        if self._schema_pid == os.getpid():
            return
        dialect = self.dialect(deadline)
        vectors = self.embedder is not None

        def missing() -> list[str]:
            listing = dialect.list_indexes
            existing = self._read(listing, {}, deadline) if listing else []
            return dialect.index_statements(self.schema, vectors, existing)

        for statement in missing():
            try:
                self._write([(statement, {})], deadline)
            except GraphQueryError:
                # Another worker may have created it first; fail only if it is still missing.
                if statement in missing():
                    raise
        self._schema_pid = os.getpid()

    # -- reads -----------------------------------------------------------------------
    def search(self, query: str, k: int, deadline: Deadline) -> list[Passage]:
        """The `k` best passages for free user text: full-text and vector hits, fused."""
        if k <= 0:
            return []
        k = min(k, MAX_K)
        try:
            dialect = self.dialect(deadline)
            if self.retrieval_query:
                return self._custom_search(dialect, query, k, deadline)
            self.ensure_schema(deadline)
            candidates = self._search(dialect, query, k, deadline)
            if candidates and is_people_question(query):
                return self._with_people(query, candidates, deadline)[:k]
            return candidates[:k]
        except KnowledgeUnavailable as exc:
            self._schema_pid = 0  # a restarted server may have lost its indexes
            logger.warning("graph search failed: %s", exc)
            raise

    def _search(self, dialect: Dialect, query: str, k: int, deadline: Deadline) -> list[Passage]:
        """Every candidate of both legs, fused, best first (more than `k` of them)."""
        vector = self._question_vector(query, deadline)
        limit = min(MAX_K, k * CANDIDATES)
        results = self.client.read(
            lambda tx: search_hits(tx, self.schema, dialect, query, vector, limit), deadline
        )
        return fuse(results, dialect)

    def _question_vector(self, query: str, deadline: Deadline) -> list[float] | None:
        """The question's embedding when chunks carry embeddings, else None (full-text only)."""
        if self.embedder is None or not query.strip() or not self._has_embeddings(deadline):
            return None
        try:
            return self.embedder.embed([query], deadline.child(seconds=deadline.remaining() / 2))[0]
        except EmbeddingFailed as exc:
            logger.warning("question embedding failed (%s): full-text only", exc.reason)
            return None

    def _has_embeddings(self, deadline: Deadline) -> bool:
        checked, found = self._embedded
        if time.monotonic() - checked < EMBEDDED_CHECK_SECONDS:
            return found
        found = bool(self._read(self._queries["embedded"], {}, deadline))
        self._embedded = (time.monotonic(), found)
        return found

    def _with_people(
        self, query: str, candidates: list[Passage], deadline: Deadline
    ) -> list[Passage]:
        """Put who attended the meeting asked about first, straight from SPOKE_IN."""
        top = candidates[best_title_match(query, [p.title for p in candidates])]
        if not top.document_id:
            return candidates
        rows = self._read(self._queries["spoke_in"], {"id": top.document_id}, deadline)
        people = [str(r["name"]) for r in rows if r.get("name")]
        if not people:
            return candidates
        return [people_passage(top, people, candidates[0].score), *candidates]

    def _custom_search(
        self, dialect: Dialect, query: str, k: int, deadline: Deadline
    ) -> list[Passage]:
        """The retrieval query from config.json; it must RETURN text, source and score."""
        vector = None
        if "$embedding" in self.retrieval_query:
            vector = self._question_vector(query, deadline)
        statement, params = custom_statement(self.retrieval_query, dialect, query, k, vector)
        return custom_passages(self._read(statement, params, deadline), dialect, k)

    def document_sha(self, doc_id: str) -> str | None:
        """The stored sha256 ("" for an interrupted ingest), or None if not stored."""
        rows = self._read(self._queries["sha"], {"id": doc_id}, Deadline(SMALL_READ_SECONDS))
        return None if not rows else str(rows[0]["sha"] or "")

    def documents(self) -> list[DocumentInfo]:
        """Every Document node with its chunk count, ordered by source."""
        rows = self._read(self._queries["listing"], {}, Deadline(LIST_SECONDS))
        return [
            DocumentInfo(
                id=str(row["id"]),
                title=str(row["title"]),
                source=str(row["source"]),
                kind=str(row["kind"]),
                date=str(row["date"]),
                chunks=int(row["chunks"] or 0),
                ingested_at=float(row["ingested_at"] or 0),
            )
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """{"documents": n, "chunks": n, "people": n} (people: distinct names)."""
        names = ("documents", "chunks", "people")
        queries = [self._queries[name] for name in names]
        values = self.client.read(
            lambda tx: [tx.run(q).single()["n"] for q in queries], Deadline(SMALL_READ_SECONDS)
        )
        return {name: int(value or 0) for name, value in zip(names, values, strict=True)}

    def version(self) -> str:
        """ "{documents}:{last update}": changes on every upsert and removal."""
        rows = self._read(self._queries["version"], {}, Deadline(VERSION_SECONDS))
        row = rows[0] if rows else {"n": 0, "t": None}
        return f"{row['n']}:{row['t'] or 0}"

    def ping(self) -> None:
        """One round trip; raises KnowledgeUnavailable."""
        self._read(self._queries["ping"], {}, Deadline(PING_SECONDS))

    # -- writes ----------------------------------------------------------------------
    def upsert(self, doc: Document) -> None:
        """Store a document, replacing any earlier version, its chunks and SPOKE_IN links."""
        deadline = Deadline(WRITE_SECONDS)
        dialect = self.dialect(deadline)
        self.ensure_schema(deadline)
        vectors = None
        if self.embedder is not None:
            texts = [f"{doc.title}\n{chunk.text}" for chunk in doc.chunks]
            try:
                vectors = self.embedder.embed(texts, deadline)
            except EmbeddingFailed as exc:
                raise KnowledgeUnavailable(f"embeddings failed: {exc.reason}") from None
            self._embedded = (0.0, False)  # look again at the next search
        self.client.write(
            lambda tx: write_document(tx, self.schema, dialect, doc, vectors, time.time()),
            deadline,
        )

    def remove(self, document_ids: Iterable[str]) -> int:
        """Delete these documents, their chunks and SPOKE_IN links, then the Persons left
        with no relationship; how many documents existed."""
        removed = 0
        for doc_id in dict.fromkeys(document_ids):
            deadline = Deadline(WRITE_SECONDS)
            dialect = self.dialect(deadline)
            removed += self.client.write(
                lambda tx, doc_id=doc_id, dialect=dialect: remove_document(
                    tx, self.schema, dialect, doc_id, time.time()
                ),
                deadline,
            )
        if removed:
            self._write([(orphans(self.schema), {})], Deadline(WRITE_SECONDS))
            self._embedded = (0.0, False)  # the removed chunks may have held the only vectors
        return removed

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process."""
        self.client.after_fork()
        reset = getattr(self.embedder, "after_fork", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Close the driver and the embedder's connections."""
        self.client.close()
        if self.embedder is not None:
            self.embedder.close()

    def __enter__(self) -> GraphKnowledgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
