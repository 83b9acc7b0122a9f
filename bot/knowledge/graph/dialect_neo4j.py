"""The Neo4j dialect (Neo4j 5.15+ and 2025.x/2026.x, Cypher 5 and 25): named indexes,
`db.index.*` procedures.

5.15 is the floor: `CREATE VECTOR INDEX` arrived then (5.13 and 5.14 only had the
`db.index.vector.createNodeIndex` procedure), and `check` says so when the server's agent
string is older. Indexes are read with `SHOW INDEXES`, which needs only the SHOW INDEX
privilege, so a read-only user can search an existing graph; only ingest and `check`
create what is missing. Lookups by document id and person name are uniqueness constraints
(their backing range index serves `MERGE`, and two ingests cannot create the same document
twice), or plain range indexes where existing data already holds duplicates.

Full-text queries are Lucene syntax: every user word is escaped and quoted. The vector
index's `score` is a similarity in [0, 1], higher is closer. Parameters travel as Bolt
values of any size, vectors included.
"""

from __future__ import annotations

import math
from typing import Any

from bot.knowledge.graph.schema import (
    CENTROID,
    GraphSchema,
    Indexes,
    SearchIndex,
    Statement,
    in_scope,
    quote,
)
from bot.knowledge.graph.text import lucene_query

VECTOR_BATCH = 100  # chunks per statement that stores vectors
MIN_VERSION = (5, 15)
LIST_INDEXES = (
    "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, state, "
    "owningConstraint, options"
)


def _on(row: dict[str, Any], kind: str, label: str, prop: str) -> bool:
    """`row` is a node index of `kind` over `label` that covers `prop`."""
    return (
        row.get("type") == kind
        and row.get("entityType") == "NODE"
        and label in (row.get("labelsOrTypes") or [])
        and prop in (row.get("properties") or [])
    )


def _search_index(
    rows: list[dict[str, Any]], kind: str, name: str, label: str, prop: str
) -> SearchIndex | None:
    """The index named `name`, else one of that kind over `label`.`prop`, as a SearchIndex."""
    named = [r for r in rows if r.get("type") == kind and r.get("name") == name]
    row = (named or [r for r in rows if _on(r, kind, label, prop)] or [None])[0]
    if row is None:
        return None
    config = (row.get("options") or {}).get("indexConfig") or {}
    dimensions = config.get("vector.dimensions")
    return SearchIndex(
        name=str(row.get("name") or ""),
        state=str(row.get("state") or ""),
        dimensions=int(dimensions) if dimensions is not None else None,
    )


def _lookups(schema: GraphSchema, rows: list[dict[str, Any]]) -> dict[str, bool]:
    """{"Document.id": unique?, ...} for the single-property range indexes that exist."""
    found = {}
    for label, prop in schema.lookups():
        for row in rows:
            exact = row.get("labelsOrTypes") == [label] and row.get("properties") == [prop]
            if exact and row.get("type") == "RANGE":
                found[f"{label}.{prop}"] = bool(row.get("owningConstraint"))
    return found


def _cosine(v: str) -> str:
    """Cypher for the cosine of the vector `v` to the unit vector $q (null when `v` is
    missing, of another length or zero)."""
    dot = f"reduce(s = 0.0, i IN range(0, size($q) - 1) | s + {v}[i] * $q[i])"
    norm = f"sqrt(reduce(s = 0.0, x IN {v} | s + x * x))"
    usable = f"{v} IS NOT NULL AND size({v}) = size($q) AND {norm} > 0"
    return f"CASE WHEN {usable} THEN {dot} / {norm} END"


class Neo4jDialect:
    """Cypher for Neo4j 5.15+, 2025.x and 2026.x."""

    name = "neo4j"
    vector_order = "DESC"
    node_id = "elementId(c)"
    list_indexes = LIST_INDEXES
    max_statement_bytes = None
    rerank = False  # Lucene's BM25 ranks well
    unique_lookups = True
    min_version = MIN_VERSION

    def term_frequencies(
        self, schema: GraphSchema, text: str, limited: bool = False
    ) -> Statement | None:
        """Nothing to look up: Lucene's BM25 already weighs rare terms."""
        return None

    def fulltext_query(self, text: str, frequencies: list[dict] | None = None) -> str:
        """Escaped, quoted Lucene terms joined by OR."""
        return lucene_query(text)

    def fulltext_call(self, schema: GraphSchema, query: str, limit: int | None) -> Statement:
        """The index is named by $index; `limit` caps Lucene's own result list too (None:
        uncapped, so that a filter after it still finds the best hits it keeps)."""
        options = f", {{limit: {int(limit)}}}" if limit is not None else ""
        call = f"CALL db.index.fulltext.queryNodes($index, $q{options}) YIELD node, score"
        return call, {"index": schema.fulltext_index, "q": query}

    def vector_call(self, schema: GraphSchema, vector: list[float], limit: int) -> Statement:
        """Approximate nearest neighbours of $embedding in the index named $index."""
        # Deprecated in Cypher 25 from Neo4j 2026.04 in favour of the SEARCH clause
        # (`MATCH (c) SEARCH c IN (VECTOR INDEX ... FOR $embedding LIMIT k) SCORE AS score`,
        # 2026.01+): switch when 2026.01 becomes the floor. The procedure still works in
        # Cypher 5 and 25; the server's deprecation notice is logged once per process.
        call = (
            f"CALL db.index.vector.queryNodes($index, {int(limit)}, $embedding) YIELD node, score"
        )
        return call, {"index": schema.vector_index, "embedding": vector}

    def set_vectors(self, schema: GraphSchema, pairs: list[tuple[Any, list[float]]]) -> list:
        """A LIST<FLOAT> property is what a Neo4j vector index indexes."""
        query = (
            f"UNWIND $rows AS row MATCH (c:{schema.chunk}) WHERE elementId(c) = row.node "
            f"SET c.{schema.embedding} = row.embedding"
        )
        rows = [{"node": node, "embedding": vector} for node, vector in pairs]
        return [
            (query, {"rows": rows[i : i + VECTOR_BATCH]}) for i in range(0, len(rows), VECTOR_BATCH)
        ]

    def set_centroid(self, schema: GraphSchema, node: Any, vector: list[float]) -> Statement:
        """A LIST<FLOAT> on the document of the chunk `node`."""
        return (
            f"MATCH (d:{schema.document})-[:HAS_CHUNK]->(c:{schema.chunk}) "
            f"WHERE elementId(c) = $node SET d.{CENTROID} = $vector",
            {"node": node, "vector": vector},
        )

    def similarities(
        self, schema: GraphSchema, nodes: list[Any], vector: list[float], limited: bool = False
    ) -> Statement:
        """Cosines in plain Cypher: vector.similarity.cosine arrived only in 5.18."""
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        readable = f"AND {in_scope('c')} " if limited else ""
        return (
            f"UNWIND $nodes AS n MATCH (c:{schema.chunk}) WHERE elementId(c) = n {readable}"
            f"OPTIONAL MATCH (d:{schema.document})-[:HAS_CHUNK]->(c) "
            f"RETURN n AS node, {_cosine(f'c.{schema.embedding}')} AS chunk, "
            f"{_cosine(f'd.{CENTROID}')} AS document",
            {"nodes": nodes, "q": [x / norm for x in vector]},
        )

    def encode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Bolt values arrive as sent."""
        return params

    def stored_text(self, text: str) -> str:
        """Lucene's tokenizer splits words at line breaks: text is stored as it is."""
        return text

    def shown_text(self, text: str) -> str:
        return text

    def read_indexes(self, schema: GraphSchema, rows: list[dict[str, Any]]) -> Indexes:
        """Ours by name, else an equivalent one over the same label and property (an
        existing graph's vector index may have another name, and `IF NOT EXISTS` would not
        create ours beside it)."""
        label = schema.chunk_label
        return Indexes(
            fulltext=_search_index(
                rows, "FULLTEXT", schema.fulltext_index, label, schema.text_property
            ),
            vector=_search_index(
                rows, "VECTOR", schema.vector_index, label, schema.embedding_property
            ),
            lookups=_lookups(schema, rows),
        )

    def index_statements(
        self, schema: GraphSchema, vectors: bool, rows: list[dict[str, Any]]
    ) -> list[tuple[str, ...]]:
        """What `SHOW INDEXES` did not list: full-text over text and title, lookups by id
        and name (a uniqueness constraint, else a range index), vectors."""
        found = self.read_indexes(schema, rows)
        c = schema.chunk
        statements: list[tuple[str, ...]] = []
        if found.fulltext is None:
            statements.append(
                (
                    f"CREATE FULLTEXT INDEX {quote(schema.fulltext_index)} IF NOT EXISTS "
                    f"FOR (c:{c}) ON EACH [c.{schema.text}, c.`title`] "
                    # The English analyzer stems ("meetings" finds "meeting"), as SQLite's
                    # porter does.
                    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english'}}",
                )
            )
        for label, prop in schema.lookups():
            if f"{label}.{prop}" in found.lookups:
                continue
            name = f"{label.lower()[:40]}_{prop}"
            node, key = f"(n:{quote(label)})", f"n.{quote(prop)}"
            statements.append(
                (
                    f"CREATE CONSTRAINT {quote(name + '_unique')} IF NOT EXISTS "
                    f"FOR {node} REQUIRE {key} IS UNIQUE",
                    f"CREATE RANGE INDEX {quote(name)} IF NOT EXISTS FOR {node} ON ({key})",
                )
            )
        if vectors and found.vector is None:
            statements.append(
                (
                    f"CREATE VECTOR INDEX {quote(schema.vector_index)} IF NOT EXISTS "
                    f"FOR (c:{c}) ON c.{schema.embedding} OPTIONS {{indexConfig: {{"
                    f"`vector.dimensions`: {int(schema.dimensions)}, "
                    "`vector.similarity_function`: 'cosine'}}",
                )
            )
        return statements

    def await_indexes(self, seconds: float) -> str | None:
        """`db.awaitIndexes` waits until every index is online (or fails at the timeout)."""
        return f"CALL db.awaitIndexes({max(1, int(seconds))})"

    def rebuild_vector(self, schema: GraphSchema) -> list[str]:
        """Nothing to rebuild: Lucene's HNSW search passes over deleted nodes while it
        searches, so k live ones come back."""
        return []
