"""The graph model, the Dialect protocol and the Cypher both dialects share.

(:Document {id, title, kind, source, date, collection, sha256, updated_at})-[:HAS_CHUNK]->
(:Chunk {id, seq, text, speakers, title, date, collection, doc_id, embedding?}) and
(:Person {name})-[:SPOKE_IN {order}]->(:Document), and the document-level statistics
ingest writes for the search (write.py): (:Document {text_terms, text_chunks, centroid?})
-[:HAS_TERM {count, chunks}]->(:SearchTerm {stem}). Title, date and collection are copied
onto each chunk, so the full-text index matches title words, every passage can name its
source, and a search limited to some collections filters hits without a traversal (a node
written before collections has no `collection`: it reads as the default, "general").
Labels, the text and embedding properties and index names come from config.json, so an
existing graph with another schema can be searched; they are checked identifiers and are
always backtick-quoted. Values, user text above all, only ever travel as parameters;
only numbers we produced ourselves (limits, node ids, vectors) are written into Cypher,
and collection names (checked by bot/readers.py) where a statement must go without
parameters (FalkorDB's, carrying a vector literal: see `scoped`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from bot.embedding import EMBEDDING_DIMENSIONS
from bot.errors import KnowledgeUnavailable
from bot.readers import DEFAULT_COLLECTION, collection_name

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def quote(name: str) -> str:
    """A checked identifier in backticks; anything else is refused, never escaped."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe Cypher identifier: {name!r}")
    return f"`{name}`"


def vector_literal(values: Sequence[float]) -> str:
    """A Cypher list literal of finite floats (our embeddings, never user text)."""
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("a vector must hold finite numbers")
    return "[" + ",".join(repr(v) for v in numbers) + "]"


@dataclass(frozen=True)
class GraphSchema:
    """Names of the labels, properties and indexes the store reads and writes."""

    chunk_label: str = "Chunk"
    document_label: str = "Document"
    person_label: str = "Person"
    term_label: str = "SearchTerm"
    text_property: str = "text"
    embedding_property: str = "embedding"
    fulltext_index: str = "chunk_fulltext"
    vector_index: str = "chunk_embedding"
    dimensions: int = EMBEDDING_DIMENSIONS

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.type == "str":
                quote(getattr(self, f.name))

    @property
    def chunk(self) -> str:
        return quote(self.chunk_label)

    @property
    def document(self) -> str:
        return quote(self.document_label)

    @property
    def person(self) -> str:
        return quote(self.person_label)

    @property
    def term(self) -> str:
        return quote(self.term_label)

    def lookups(self) -> tuple[tuple[str, str], ...]:
        """(label, property) of every node MERGEd by one property: each wants an index."""
        return (
            (self.document_label, "id"),
            (self.person_label, "name"),
            (self.term_label, "stem"),
        )

    @property
    def text(self) -> str:
        return quote(self.text_property)

    @property
    def embedding(self) -> str:
        return quote(self.embedding_property)


Statement = tuple[str, dict[str, Any]]
# The collections a search reads, sorted (as `$collections`); None: every one, unfiltered.
Scope = tuple[str, ...] | None
COLLECTION = "collection"  # a Document's and each of its Chunks' property
CENTROID = "centroid"  # a Document's vector: the normalised sum of its chunks' unit vectors
ONLINE = "ONLINE"  # an index state: queries use it (Neo4j's word; FalkorDB says OPERATIONAL)


@dataclass(frozen=True)
class SearchIndex:
    """One search index as the server lists it."""

    name: str  # what the query procedure names (Neo4j); FalkorDB's are named by label
    state: str  # ONLINE, POPULATING, FAILED, ...
    dimensions: int | None = None  # a vector index's
    # FalkorDB: the label's live index entries, and how many were ever added (maxDocId).
    # Deleted and updated nodes stay behind in its vector index as tombstones, so the
    # difference is an upper bound of the tombstones a vector query must read past.
    entries: int = 0
    added: int = 0

    @property
    def online(self) -> bool:
        return self.state == ONLINE

    @property
    def stale(self) -> int:
        """Entries added but no longer live: at most this many tombstones."""
        return max(0, self.added - self.entries)


@dataclass(frozen=True)
class Indexes:
    """What the store's queries need, as found on the server (None: missing)."""

    fulltext: SearchIndex | None = None
    vector: SearchIndex | None = None
    # "Document.id" / "Person.name" -> True when a uniqueness constraint backs the lookup
    lookups: dict[str, bool] = field(default_factory=dict)
    building: bool = False  # FalkorDB: an index of the chunk label is being (re)built

    def vector_usable(self, dimensions: int) -> bool:
        """The vector index answers queries of `dimensions`-long vectors."""
        vector = self.vector
        return vector is not None and vector.online and vector.dimensions in (None, dimensions)

    def settled(self) -> bool:
        """Nothing of ours is still being built."""
        legs = (self.fulltext, self.vector)
        return not self.building and all(leg is None or leg.online for leg in legs)


class Dialect(Protocol):
    """What differs between Neo4j and FalkorDB: DDL, search procedures, parameters."""

    name: str
    vector_order: str  # "DESC" when a higher score is closer, "ASC" for a distance
    node_id: str  # Cypher for `c`'s identity (returned at creation, used to set vectors)
    list_indexes: str  # lists the existing indexes (a read: no index-creation rights needed)
    max_statement_bytes: int | None  # query + rendered parameters, when the server has a cap
    rerank: bool  # full-text candidates are ranked by rank.bm25, not by the engine
    min_version: tuple[int, int] | None  # the oldest server version (agent string) it speaks to
    unique_lookups: bool  # document ids and person names are uniqueness constraints

    def term_frequencies(
        self, schema: GraphSchema, text: str, limited: bool = False
    ) -> Statement | None:
        """A statement returning rows of {term, chunks, frequency}, if the engine needs them;
        `limited`: counting only the chunks in $collections."""
        ...

    def fulltext_query(self, text: str, frequencies: list[dict] | None = None) -> str:
        """Free user text as a safe query string for this engine ("" = nothing to find)."""
        ...

    def fulltext_call(self, schema: GraphSchema, query: str, limit: int | None) -> Statement:
        """A CALL yielding `node, score` for the full-text query, best first; `limit` may cap
        the engine's own list (None: every hit, for a search that filters them after)."""
        ...

    def vector_call(self, schema: GraphSchema, vector: list[float], limit: int) -> Statement:
        """A CALL yielding `node, score` for the nearest chunks."""
        ...

    def set_vectors(self, schema: GraphSchema, pairs: list[tuple[Any, list[float]]]) -> list:
        """Statements storing (node id, vector) pairs as indexable vectors."""
        ...

    def set_centroid(self, schema: GraphSchema, node: Any, vector: list[float]) -> Statement:
        """A statement storing the document vector on the document of chunk `node`."""
        ...

    def similarities(
        self, schema: GraphSchema, nodes: list[Any], vector: list[float], limited: bool = False
    ) -> Statement:
        """Rows of {node, chunk, document}: the cosine of each chunk `node`'s vector and of
        its document's vector to `vector` (null where one is missing); `limited`: only for
        chunks in $collections."""
        ...

    def encode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters as this server must receive them to read them back unchanged."""
        ...

    def stored_text(self, text: str) -> str:
        """Chunk text as written, so that the full-text index sees every word."""
        ...

    def shown_text(self, text: str) -> str:
        """Stored chunk text as users see it (undoes stored_text)."""
        ...

    def read_indexes(self, schema: GraphSchema, rows: list[dict[str, Any]]) -> Indexes:
        """The indexes the store's queries use, from the rows of `list_indexes`."""
        ...

    def index_statements(
        self, schema: GraphSchema, vectors: bool, rows: list[dict[str, Any]]
    ) -> list[tuple[str, ...]]:
        """For each missing index, the statements to try in order until one succeeds."""
        ...

    def await_indexes(self, seconds: float) -> str | None:
        """A statement that waits for new indexes to come online (None: poll the listing)."""
        ...

    def rebuild_vector(self, schema: GraphSchema) -> list[str]:
        """Statements that rebuild the vector index without its tombstones (or none)."""
        ...


def rendered_bytes(value: Any) -> int:
    """An upper bound of a parameter's size once written out as Cypher text."""
    if isinstance(value, str):
        return len(value.encode("utf-8")) + sum(value.count(c) for c in "'\"\\\n\r\t") + 2
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + 4 + rendered_bytes(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(rendered_bytes(v) + 2 for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return len(str(value))  # written out in decimal
    return 26  # floats, booleans, null


def statement_bytes(query: str, params: dict[str, Any]) -> int:
    """An upper bound of query text plus parameters as a server that renders them sees it."""
    if not params:
        return 0  # nothing is rendered: FalkorDB takes parameter-free queries of any size
    return len(query.encode("utf-8")) + 8 + rendered_bytes(params)


def run(tx: Any, dialect: Dialect, query: str, params: dict[str, Any] | None = None) -> Any:
    """Run one statement, refusing (never sending) one the server could not survive."""
    params = params or {}
    limit = dialect.max_statement_bytes
    # Measured before encoding: rendered_bytes already counts the escapes it will add.
    if limit is not None and statement_bytes(query, params) > limit:
        raise KnowledgeUnavailable(f"statement too large for {dialect.name}'s Bolt parameters")
    return tx.run(query, dialect.encode_params(params))


def scope_of(collections: frozenset[str] | None) -> Scope:
    """The collections a search may read, as the statements bind them (None: all)."""
    return None if collections is None else tuple(sorted(collections))


def in_scope(node: str) -> str:
    """Cypher that holds when `node` (a Document or Chunk) is in one of $collections; one
    written before collections existed is in the default collection."""
    return f"coalesce({node}.{COLLECTION}, '{DEFAULT_COLLECTION}') IN $collections"


def scoped(statement: Statement, dialect: Dialect, scope: Scope) -> Statement:
    """`statement` with $collections bound to `scope` (unchanged for None): a parameter,
    or, in a statement FalkorDB must take parameter-free (one carrying a vector literal,
    too long for its parameter buffer), a list literal of checked names."""
    query, params = statement
    if scope is None:
        return statement
    bound = {**params, "collections": list(scope)}
    limit = dialect.max_statement_bytes
    if params or limit is None or statement_bytes(query, bound) <= limit:
        return query, bound
    names = ", ".join(f"'{collection_name(name)}'" for name in scope)  # no quote to escape
    return re.sub(r"\$collections\b", f"[{names}]", query), params


def hits_query(
    schema: GraphSchema, dialect: Dialect, call: str, order: str, limit: int, limited: bool = False
) -> str:
    """Wrap a search CALL: best hits first, each with its document's metadata; `limited`:
    only hits in $collections, kept before the best are chosen.

    Equal scores (vectors orthogonal to the question's, alike chunks) are ordered by chunk
    id, not by the node ids a graph happened to give: the same chunks in another graph, or
    the same collections among others, rank alike."""
    keep = f"WHERE {in_scope('c')} WITH c, score " if limited else ""
    return (
        f"{call} WITH node AS c, score {keep}ORDER BY score {order}, c.id LIMIT {int(limit)} "
        f"OPTIONAL MATCH (d:{schema.document})-[:HAS_CHUNK]->(c) "
        f"RETURN coalesce(c.id, toString({dialect.node_id})) AS chunk_id, "
        f"c.{schema.text} AS text, coalesce(d.id, c.doc_id, '') AS document_id, "
        "coalesce(d.title, c.title, '') AS title, coalesce(d.date, c.date, '') AS date, "
        f"coalesce(c.speakers, []) AS speakers, c.seq AS seq, {dialect.node_id} AS node, "
        "coalesce(c.location, '') AS location, "
        f"score ORDER BY score {order}, chunk_id"
    )


def read_queries(schema: GraphSchema) -> dict[str, str]:
    """The small read queries, by name."""
    d, c, p = schema.document, schema.chunk, schema.person
    return {
        # A document stored without the search's statistics reads as an interrupted
        # ingest (""), so the next ingest writes it again, statistics included.
        "sha": (
            f"MATCH (d:{d} {{id: $id}}) "
            "RETURN CASE WHEN d.text_chunks IS NULL THEN '' ELSE d.sha256 END AS sha LIMIT 1"
        ),
        "documents": f"MATCH (d:{d}) RETURN count(d) AS n",
        "chunks": f"MATCH (c:{c}) RETURN count(c) AS n",
        "people": f"MATCH (p:{p})-[:SPOKE_IN]->() RETURN count(DISTINCT toLower(p.name)) AS n",
        "people_names": (
            f"MATCH (p:{p})-[:SPOKE_IN]->(d) WITH p.name AS name, count(DISTINCT d) AS n "
            "RETURN name ORDER BY n DESC, name LIMIT $limit"
        ),
        "people_names_scope": (
            f"MATCH (p:{p})-[:SPOKE_IN]->(d) WHERE {in_scope('d')} "
            "WITH p.name AS name, count(DISTINCT d) AS n "
            "RETURN name ORDER BY n DESC, name LIMIT $limit"
        ),
        "version": f"MATCH (d:{d}) RETURN count(d) AS n, max(d.updated_at) AS t",
        "listing": (
            f"MATCH (d:{d}) OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:{c}) "
            "WITH d, count(c) AS chunks RETURN coalesce(d.id, '') AS id, "
            "coalesce(d.title, '') AS title, coalesce(d.source, '') AS source, "
            "coalesce(d.kind, '') AS kind, coalesce(d.date, '') AS date, chunks, "
            "coalesce(d.updated_at, 0) AS ingested_at, "
            f"coalesce(d.{COLLECTION}, '{DEFAULT_COLLECTION}') AS collection, "
            "coalesce(d.sha256, '') AS sha256 ORDER BY source, id"
        ),
        "spoke_in": (
            f"MATCH (p:{p})-[r:SPOKE_IN]->(d:{d} {{id: $id}}) "
            "RETURN p.name AS name ORDER BY r.order, p.name"
        ),
        "spoke_in_scope": (
            f"MATCH (p:{p})-[r:SPOKE_IN]->(d:{d} {{id: $id}}) WHERE {in_scope('d')} "
            "RETURN p.name AS name ORDER BY r.order, p.name"
        ),
        "embedded": (
            f"MATCH (c:{c}) WHERE c.{schema.embedding} IS NOT NULL RETURN 1 AS found LIMIT 1"
        ),
        # Whether the readable chunks carry vectors: a search limited to collections
        # without any is full-text only, as a store holding only them would be.
        "embedded_scope": (
            f"MATCH (c:{c}) WHERE c.{schema.embedding} IS NOT NULL AND {in_scope('c')} "
            "RETURN 1 AS found LIMIT 1"
        ),
        "ping": "RETURN 1 AS ok",
    }
