"""What the graph store knows about its indexes, and the only code that changes them.

The search path only reads: the listing (`SHOW INDEXES` / `db.indexes()`, no creation
rights needed) is remembered for a while, and a search leg whose index is missing, not
ONLINE, or built for vectors of another length is left out. Ingest and `check` create what
is missing (once per process), then wait for the new indexes to come online; after
deletions, ingest rebuilds a FalkorDB vector index that carries many tombstones.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

from bot.deadline import Deadline
from bot.knowledge.graph.client import GraphClient, GraphQueryError
from bot.knowledge.graph.schema import ONLINE, Dialect, GraphSchema, Indexes, SearchIndex, run

logger = logging.getLogger(__name__)

LISTING_SECONDS = 60.0  # a listing is trusted this long ...
UNSETTLED_SECONDS = 5.0  # ... or this long while one of our indexes is still being built
AWAIT_SECONDS = 60.0  # ingest waits at most this long for new indexes to come online
AWAIT_MARGIN_SECONDS = 5.0
POLL_SECONDS = 0.2  # between listings while waiting (FalkorDB has no await procedure)
# FalkorDB: rebuild the vector index once the label's index holds more stale entries
# (an upper bound of tombstones) than this share of its live ones, and at least the floor;
# never more than MAX_STALE, so a vector query never reads past more than that.
REBUILD_SHARE = 0.5
REBUILD_FLOOR = 64
MAX_STALE = 2000


def needs_rebuild(entries: int, stale: int) -> bool:
    """True when a vector index with `entries` live and `stale` dead entries wants a rebuild."""
    return stale > min(MAX_STALE, max(REBUILD_FLOOR, int(entries * REBUILD_SHARE)))


class IndexKeeper:
    """The indexes one store uses: listed (cached), created, awaited, rebuilt."""

    def __init__(self, client: GraphClient, schema: GraphSchema, vectors: bool) -> None:
        self.client = client
        self.schema = schema
        self.vectors = vectors  # an embedder is configured: the vector index is ours to keep
        self._listed: tuple[float, Indexes] | None = None  # (trusted until, indexes)
        self._ensured_pid = 0
        self._said: set[str] = set()
        self.failures: dict[str, str] = {}  # statement -> why it could not be created

    # -- reading (the search path) -----------------------------------------------------
    def current(self, dialect: Dialect, deadline: Deadline) -> Indexes:
        """The indexes as last listed; listed again when that is too old."""
        listed = self._listed
        if listed is not None and time.monotonic() < listed[0]:
            return listed[1]
        return self.list(dialect, deadline)[1]

    def list(
        self, dialect: Dialect, deadline: Deadline, say: bool = True
    ) -> tuple[list[dict[str, Any]], Indexes]:
        """List now: the raw rows and what they mean; warns (once) about what is unusable,
        unless `say` is false (what ensure is about to create)."""
        try:
            rows = self.client.read(
                lambda tx: run(tx, dialect, dialect.list_indexes).data(), deadline
            )
            found = dialect.read_indexes(self.schema, rows)
        except GraphQueryError as exc:
            if ".Security." not in exc.code:
                raise
            # A role without SHOW INDEX (Neo4j's `reader` has it): search as configured;
            # a leg whose index is not there fails alone.
            self._say(f"cannot list the indexes ({exc.code}): searching them as configured")
            rows, found = [], self._assumed()
        trust = LISTING_SECONDS if found.settled() else UNSETTLED_SECONDS
        self._listed = (time.monotonic() + trust, found)
        for problem in self.problems(found) if say else ():
            self._say(problem)
        return rows, found

    def _assumed(self) -> Indexes:
        """The configured indexes, taken to be online (when they cannot be listed)."""
        vector = SearchIndex(self.schema.vector_index, ONLINE) if self.vectors else None
        return Indexes(fulltext=SearchIndex(self.schema.fulltext_index, ONLINE), vector=vector)

    def forget(self) -> None:
        """List again before the next search (after a failure: an index may have gone)."""
        self._listed = None

    def searchable(self, found: Indexes) -> GraphSchema:
        """The schema with the index names the queries must use (an existing graph's
        equivalent index may carry another name)."""
        names = {}
        if found.fulltext is not None and found.fulltext.name:
            names["fulltext_index"] = found.fulltext.name
        if found.vector is not None and found.vector.name:
            names["vector_index"] = found.vector.name
        return replace(self.schema, **names) if names else self.schema

    def problems(self, found: Indexes) -> list[str]:
        """What keeps a search leg from running, in words."""
        problems = []
        fulltext, vector = found.fulltext, found.vector
        if fulltext is None:
            problems.append(
                f"the full-text index {self.schema.fulltext_index} is missing: searches find "
                "nothing until ingest or check (by a user allowed to create indexes) creates it"
            )
        elif not fulltext.online:
            problems.append(f"the full-text index is {fulltext.state}: full-text search waits")
        if not self.vectors or vector is None:
            return problems  # no embedder: the vector index is none of our business
        if vector.dimensions not in (None, self.schema.dimensions):
            problems.append(
                f"the vector index {vector.name} holds {vector.dimensions}-dimension vectors "
                f"but the embedder gives {self.schema.dimensions}: vector search is off, "
                "full-text search still answers (drop that index, or point neo4j.vector_index "
                "and neo4j.embedding_property at one for this model)"
            )
        elif not vector.online:
            problems.append(f"the vector index is {vector.state}: vector search waits")
        return problems

    def _say(self, problem: str) -> None:
        """Log a problem once per process (a listing is read every minute)."""
        if problem not in self._said:
            self._said.add(problem)
            logger.warning("graph: %s", problem)

    # -- changing (ingest and check) -----------------------------------------------------
    def ensure(self, dialect: Dialect, deadline: Deadline) -> Indexes:
        """Create what is missing (once per process, again after a failure), then wait
        until the new indexes are online."""
        if self._ensured_pid == os.getpid():
            return self.current(dialect, deadline)
        rows, found = self.list(dialect, deadline, say=False)
        needed = dialect.index_statements(self.schema, self.vectors, rows)
        created = [self._create(dialect, choices, deadline) for choices in needed]
        if any(created):
            found = self._await(dialect, deadline)
        self._ensured_pid = os.getpid()
        return found

    def _create(self, dialect: Dialect, choices: tuple[str, ...], deadline: Deadline) -> bool:
        """Run the first of `choices` the server accepts; False (and why) if none."""
        for statement in choices:
            try:
                self.client.write(lambda tx, s=statement: run(tx, dialect, s).consume(), deadline)
                self.failures.pop(choices[0], None)
                return True
            except GraphQueryError as exc:
                # Another process may have created it first, existing data may break a
                # uniqueness constraint (the next choice is a plain index), or this user
                # may not create indexes: the listing that follows tells what is missing.
                self.failures[choices[0]] = exc.code or str(exc)
        logger.warning("graph: could not create an index (%s)", self.failures[choices[0]])
        return False

    def _await(self, dialect: Dialect, deadline: Deadline) -> Indexes:
        """Wait (within AWAIT_SECONDS) until nothing of ours is being built."""
        # The server's own timeout ends first, so its answer arrives within our deadline.
        wait = deadline.child(seconds=AWAIT_SECONDS + AWAIT_MARGIN_SECONDS)
        statement = dialect.await_indexes(min(AWAIT_SECONDS, wait.remaining() - 1))
        if statement is not None:
            try:
                self.client.read(lambda tx: run(tx, dialect, statement).consume(), wait)
            except GraphQueryError as exc:  # timed out: searches skip it until it is online
                logger.warning("graph: indexes still populating (%s)", exc.code or exc)
        while True:
            _, found = self.list(dialect, deadline)
            if found.settled() or wait.remaining() < POLL_SECONDS:
                return found
            time.sleep(POLL_SECONDS)

    def tidy(self, dialect: Dialect, deadline: Deadline) -> None:
        """After deletions: rebuild a vector index whose tombstones outgrow its share."""
        statements = dialect.rebuild_vector(self.schema)
        if not statements or not self.vectors:
            return
        _, found = self.list(dialect, deadline)
        vector = found.vector
        if vector is None or found.building or vector.dimensions != self.schema.dimensions:
            return  # not ours to rebuild, or a rebuild is already under way
        if not needs_rebuild(vector.entries, vector.stale):
            return
        logger.info(
            "graph: rebuilding the vector index (%d live entries, up to %d tombstones)",
            vector.entries,
            vector.stale,
        )
        try:
            for statement in statements:
                self.client.write(lambda tx, s=statement: run(tx, dialect, s).consume(), deadline)
        except GraphQueryError as exc:  # another ingest rebuilds it at the same moment
            logger.warning("graph: vector index rebuild failed (%s)", exc.code or exc)
            self._ensured_pid = 0  # the next upsert creates it if it is gone
        self.forget()

    # -- reporting (check) -----------------------------------------------------------------
    def findings(self, dialect: Dialect, found: Indexes) -> list[tuple[str, str]]:
        """`check`'s lines about the indexes: (level, text)."""
        lines = []
        if found.fulltext is not None and found.fulltext.online:
            lines.append(("ok", f"graph full-text index {found.fulltext.name}: ONLINE"))
        if self.vectors and found.vector_usable(self.schema.dimensions):
            size = f", {found.vector.dimensions} dimensions" if found.vector.dimensions else ""
            lines.append(("ok", f"graph vector index {found.vector.name}: ONLINE{size}"))
        for problem in self.problems(found):
            serious = "is missing" in problem or "dimension" in problem
            lines.append(("error" if serious else "warning", f"graph: {problem}"))
        if self.vectors and found.vector is None:
            lines.append(("warning", "graph: no vector index yet: search is full-text only"))
        for label, prop in self.schema.lookups():
            key = f"{label}.{prop}"
            if key not in found.lookups:
                lines.append(("warning", f"graph: no index on {key}: every ingest scans them"))
            elif dialect.unique_lookups and not found.lookups[key]:
                lines.append(
                    (
                        "warning",
                        f"graph: {key} has a range index but no uniqueness constraint, so two "
                        "ingests at once could store one twice; drop that index and run check",
                    )
                )
        for statement, reason in self.failures.items():
            lines.append(("warning", f"graph: could not run {statement[:60]}... ({reason})"))
        return lines
