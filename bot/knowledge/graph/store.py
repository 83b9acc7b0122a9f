"""The graph knowledge store: Neo4j or FalkorDB over Bolt, full-text + vector + fusion.

One store, one small dialect switch (dialect_neo4j.py, dialect_falkordb.py) for index DDL
and the search procedures. Retrieval is full-text always and vector search when chunks
carry embeddings and an embedder is configured, each hit lifted by its document's evidence
(ranking.py), or nothing when the knowledge does not cover the question; each leg runs in
its own transaction and only when its index is online (indexes.py), so one failing leg
leaves the other's hits. A search limited to some collections filters inside each of its
statements and ranks with their documents' statistics alone (search.py). Searching only
reads: indexes are created by ingest and `check`. Every failure of the server or the
driver becomes KnowledgeUnavailable, so the use case degrades.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from bot.deadline import Deadline
from bot.embedding import Embedder
from bot.errors import EmbeddingFailed, KnowledgeUnavailable
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.dialect_falkordb import FalkorDialect
from bot.knowledge.graph.dialect_neo4j import Neo4jDialect
from bot.knowledge.graph.indexes import IndexKeeper
from bot.knowledge.graph.ranking import CANDIDATES
from bot.knowledge.graph.schema import (
    Dialect,
    GraphSchema,
    Indexes,
    Scope,
    read_queries,
    run,
    scope_of,
    scoped,
)
from bot.knowledge.graph.search import (
    FULLTEXT,
    VECTOR,
    custom_passages,
    custom_statement,
    each_leg,
    fulltext_hits,
    people_passage,
    ranked_passages,
    vector_hits,
)
from bot.knowledge.graph.server import describe, detect_dialect, too_old
from bot.knowledge.graph.text import best_title_match, is_people_question
from bot.knowledge.graph.write import move_document, remove_document, write_document
from bot.knowledge.store import Document, DocumentInfo, Readable
from bot.models import Passage
from bot.readers import collection_name

logger = logging.getLogger(__name__)

DIALECTS: dict[str, Dialect] = {"neo4j": Neo4jDialect(), "falkordb": FalkorDialect()}
MAX_K = 100
WRITE_SECONDS = 120.0  # ingest is offline: one document (embeddings included) gets this long
# Counts and sha lookups (CLI, ingest, check; not the webhook): longer than a webhook's
# budget, so a cold connection gets the offline acquisition time (client.py).
SMALL_READ_SECONDS = 20.0
CHECK_SECONDS = 90.0  # `check`: the server, then creating missing indexes and waiting
LIST_SECONDS = 60.0  # every document with its chunk count (CLI, ingest --prune, check)
PING_SECONDS = 1.5  # /health must say "down" quickly
VERSION_SECONDS = 1.0  # read before every first-turn answer (answer cache key)
EMBEDDED_CHECK_SECONDS = 60.0  # how long "do chunks carry embeddings?" is remembered
MAX_REMEMBERED_SCOPES = 64  # sets of collections whose answer to that is remembered


class GraphKnowledgeStore:
    """KnowledgeStore on a Bolt graph database; connects lazily, so start-up never waits."""

    def __init__(
        self,
        client: GraphClient,
        schema: GraphSchema | None = None,
        dialect: str = "auto",
        embedder: Embedder | None = None,
        retrieval_query: str = "",
        relevance_floor: bool = False,
    ) -> None:
        if dialect not in (*DIALECTS, "auto"):
            raise ValueError(f"unknown graph dialect {dialect!r}")
        self.client = client
        self.schema = schema or GraphSchema()
        if embedder is not None:  # the vector index is made for, and checked against, these
            self.schema = replace(self.schema, dimensions=embedder.dimensions)
        self.embedder = embedder
        self.retrieval_query = retrieval_query.strip()
        self.relevance_floor = relevance_floor  # relevance.py: "not found" below it
        self._dialect: Dialect | None = DIALECTS.get(dialect)
        self.backend = self._dialect.name if self._dialect else "graph"
        self._queries = read_queries(self.schema)
        self.indexes = IndexKeeper(client, self.schema, vectors=embedder is not None)
        # Per scope searched (None: all collections): (checked at, answer).
        self._embedded: dict[Scope, tuple[float, bool]] = {}

    # -- plumbing --------------------------------------------------------------------
    def dialect(self, deadline: Deadline) -> Dialect:
        """The configured dialect, or the one the server shows ("auto") once it answers;
        a failure (credentials above all) settles nothing."""
        if self._dialect is None:
            name, info = detect_dialect(self.client, deadline)
            self._dialect = DIALECTS[name]
            self.backend = name
            logger.info("graph dialect detected: %s (%s)", name, info.agent)
            if problem := too_old(self._dialect.min_version, info):
                logger.error("graph: %s", problem)
        return self._dialect

    def _read(self, query: str, params: dict[str, Any], deadline: Deadline) -> list[dict]:
        dialect = self.dialect(deadline)
        return self.client.read(lambda tx: run(tx, dialect, query, params).data(), deadline)

    def prepare(self, deadline: Deadline) -> Indexes:
        """Create the missing indexes and wait for them (ingest and check; never a search)."""
        return self.indexes.ensure(self.dialect(deadline), deadline)

    def diagnose(self) -> list[tuple[str, str]]:
        """`check`'s graph lines, (level, text): the server and whether the dialect supports
        its version, then the indexes (created when missing) and their dimensions."""
        deadline = Deadline(CHECK_SECONDS)
        info = self.client.server_info(deadline)
        dialect = self.dialect(deadline)
        lines = [("ok", describe(dialect.name, info))]
        if problem := too_old(dialect.min_version, info):
            return [*lines, ("error", f"graph server: {problem}")]
        return lines + self.indexes.findings(dialect, self.prepare(deadline))

    # -- reads -----------------------------------------------------------------------
    def search(
        self, query: str, k: int, deadline: Deadline, collections: Readable = None
    ) -> list[Passage]:
        """The `k` best passages for free user text: full-text and vector hits ranked with
        their documents' evidence; none when the knowledge does not cover the question.
        With `collections`, as a graph holding only their documents would answer."""
        if k <= 0 or collections == frozenset():
            return []
        k, scope = min(k, MAX_K), scope_of(collections)
        try:
            dialect = self.dialect(deadline)
            if self.retrieval_query:
                return self._custom_search(dialect, query, k, deadline, scope)
            candidates = self._search(dialect, query, k, deadline, scope)
            if candidates and is_people_question(query):
                return self._with_people(query, candidates, deadline, scope)[:k]
            return candidates[:k]
        except KnowledgeUnavailable as exc:
            self.indexes.forget()  # a restarted server may have lost its indexes
            logger.warning("graph search failed: %s", exc)
            raise

    def _search(
        self, dialect: Dialect, query: str, k: int, deadline: Deadline, scope: Scope
    ) -> list[Passage]:
        """Every candidate in `scope` of the legs whose index is online, ranked, best first."""
        found = self.indexes.current(dialect, deadline)
        schema, limit = self.indexes.searchable(found), CANDIDATES

        def read(work: Callable[[Any], list[dict]]) -> list[dict]:
            return self.client.read(work, deadline)

        legs: dict[str, Callable[[], list[dict]]] = {}
        if found.fulltext is not None and found.fulltext.online:
            legs[FULLTEXT] = lambda: read(
                lambda tx: fulltext_hits(tx, schema, dialect, query, limit, scope)
            )
        vector = None
        if found.vector is not None and found.vector_usable(schema.dimensions):
            index, vector = found.vector, self._question_vector(query, deadline, scope)
        if vector is not None:
            legs[VECTOR] = lambda: vector_hits(read, schema, dialect, index, vector, limit, scope)
        results = each_leg(legs)
        if len(results) < len(legs):
            self.indexes.forget()  # the failed leg's index may have gone
        floor = self.relevance_floor
        return ranked_passages(read, schema, dialect, query, results, vector, floor, scope)

    def _question_vector(
        self, query: str, deadline: Deadline, scope: Scope = None
    ) -> list[float] | None:
        """The question's embedding when the chunks in `scope` carry embeddings, else None
        (full-text only)."""
        if self.embedder is None or not query.strip():
            return None
        if not self._has_embeddings(deadline, scope):
            return None
        try:
            return self.embedder.embed([query], deadline.child(seconds=deadline.remaining() / 2))[0]
        except EmbeddingFailed as exc:
            logger.warning("question embedding failed (%s): full-text only", exc.reason)
            return None

    def _has_embeddings(self, deadline: Deadline, scope: Scope) -> bool:
        """Whether chunks in `scope` carry embeddings (remembered a while, per scope)."""
        checked, found = self._embedded.get(scope, (0.0, False))
        if time.monotonic() - checked < EMBEDDED_CHECK_SECONDS:
            return found
        name = "embedded" if scope is None else "embedded_scope"
        dialect = self.dialect(deadline)
        found = bool(self._read(*scoped((self._queries[name], {}), dialect, scope), deadline))
        if len(self._embedded) >= MAX_REMEMBERED_SCOPES:
            self._embedded.clear()  # as many sets of collections as senders, at worst
        self._embedded[scope] = (time.monotonic(), found)
        return found

    def _with_people(
        self, query: str, candidates: list[Passage], deadline: Deadline, scope: Scope
    ) -> list[Passage]:
        """Put who attended the meeting asked about first, straight from SPOKE_IN."""
        top = candidates[best_title_match(query, [p.title for p in candidates])]
        if not top.document_id:
            return candidates
        name = "spoke_in" if scope is None else "spoke_in_scope"
        spoke_in = (self._queries[name], {"id": top.document_id})
        rows = self._read(*scoped(spoke_in, self.dialect(deadline), scope), deadline)
        people = [str(r["name"]) for r in rows if r.get("name")]
        if not people:
            return candidates
        return [people_passage(top, people, candidates[0].score), *candidates]

    def _custom_search(
        self, dialect: Dialect, query: str, k: int, deadline: Deadline, scope: Scope
    ) -> list[Passage]:
        """The retrieval query from config.json; it must RETURN text, source and score (and,
        for a search limited to some collections, filter by $collections)."""
        vector = None
        if "$embedding" in self.retrieval_query:
            vector = self._question_vector(query, deadline, scope)
        statement, params = custom_statement(self.retrieval_query, dialect, query, k, vector, scope)
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
                collection=str(row["collection"]),
                sha256=str(row.get("sha256") or ""),
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

    def people(
        self, limit: int, deadline: Deadline, collections: frozenset[str] | None = None
    ) -> list[str]:
        """Up to `limit` names of speakers (of `collections`' documents, when given), those
        in the most documents first."""
        scope = scope_of(collections)
        name = "people_names" if scope is None else "people_names_scope"
        statement = (self._queries[name], {"limit": limit})
        rows = self._read(*scoped(statement, self.dialect(deadline), scope), deadline)
        return [str(row["name"]) for row in rows]

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
        """Store a document, replacing any earlier version, its chunks and SPOKE_IN links;
        in its collection, or ("") the stored document's, or the default for a new one."""
        if doc.collection:
            collection_name(doc.collection)  # ValueError: ingest checks names first
        deadline = Deadline(WRITE_SECONDS)
        dialect = self.dialect(deadline)
        self.prepare(deadline)
        vectors = None
        if self.embedder is not None:
            texts = [f"{doc.title}\n{chunk.text}" for chunk in doc.chunks]
            try:
                vectors = self.embedder.embed(texts, deadline)
            except EmbeddingFailed as exc:
                raise KnowledgeUnavailable(f"embeddings failed: {exc.reason}") from None
            self._embedded = {}  # look again at the next search
        self.client.write(
            lambda tx: write_document(tx, self.schema, dialect, doc, vectors, time.time()),
            deadline,
        )
        self.indexes.tidy(dialect, deadline)  # an earlier version's chunks were deleted

    def remove(self, document_ids: Iterable[str]) -> int:
        """Delete these documents, their chunks and SPOKE_IN links, and of their speakers
        those left with no relationship; how many documents existed."""
        removed = self._each_document(
            document_ids,
            lambda tx, dialect, doc_id: remove_document(
                tx, self.schema, dialect, doc_id, time.time()
            ),
        )
        if removed:
            self._embedded = {}  # the removed chunks may have held the only vectors
            deadline = Deadline(WRITE_SECONDS)
            self.indexes.tidy(self.dialect(deadline), deadline)
        return removed

    def move(self, document_ids: Iterable[str], collection: str) -> int:
        """Put these documents and their chunks in `collection` (a new version, even for a
        document already there); how many existed."""
        collection_name(collection)  # ValueError: the CLI checks names first
        moved = self._each_document(
            document_ids,
            lambda tx, dialect, doc_id: move_document(
                tx, self.schema, dialect, doc_id, collection, time.time()
            ),
        )
        if moved:
            self._embedded = {}  # a collection may have gained or lost its only vectors
            # FalkorDB indexes an updated node again: its old vector entry is a tombstone.
            deadline = Deadline(WRITE_SECONDS)
            self.indexes.tidy(self.dialect(deadline), deadline)
        return moved

    def _each_document(
        self, document_ids: Iterable[str], work: Callable[[Any, Dialect, str], int]
    ) -> int:
        """`work(tx, dialect, doc_id)` for each document in a write transaction of its own
        (a document's time budget each); the sum of what it returned."""
        done = 0
        for doc_id in dict.fromkeys(document_ids):
            deadline = Deadline(WRITE_SECONDS)
            dialect = self.dialect(deadline)
            done += self.client.write(
                lambda tx, doc_id=doc_id, dialect=dialect: work(tx, dialect, doc_id), deadline
            )
        return done

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
