"""The Neo4j dialect (Neo4j 5 / 2025 Cypher manual): named indexes, `db.index.*` procedures.

Full-text queries are Lucene syntax: every user word is escaped and quoted. Indexes are
created with `CREATE ... INDEX name IF NOT EXISTS`, which is a no-op (plus an
informational notification) when an index of that name or schema exists. The vector
index's `score` is a similarity in [0, 1], higher is closer. Parameters travel as Bolt
values of any size, vectors included.
"""

from __future__ import annotations

from typing import Any

from bot.knowledge.graph.schema import GraphSchema, Statement, quote
from bot.knowledge.graph.text import lucene_query

VECTOR_BATCH = 100  # chunks per statement that stores vectors


class Neo4jDialect:
    """Cypher for Neo4j 5.13+ and 2025.x."""

    name = "neo4j"
    vector_order = "DESC"
    node_id = "elementId(c)"
    list_indexes = None
    max_statement_bytes = None
    rerank = False  # Lucene's BM25 ranks well

    def term_frequencies(self, schema: GraphSchema, text: str) -> Statement | None:
        """Nothing to look up: Lucene's BM25 already weighs rare terms."""
        return None

    def fulltext_query(self, text: str, frequencies: list[dict] | None = None) -> str:
        """Escaped, quoted Lucene terms joined by OR."""
        return lucene_query(text)

    def fulltext_call(self, schema: GraphSchema, query: str, limit: int) -> Statement:
        """The index is named by $index; `limit` caps Lucene's own result list too."""
        call = (
            f"CALL db.index.fulltext.queryNodes($index, $q, {{limit: {int(limit)}}}) "
            "YIELD node, score"
        )
        return call, {"index": schema.fulltext_index, "q": query}

    def vector_call(self, schema: GraphSchema, vector: list[float], limit: int) -> Statement:
        """Approximate nearest neighbours of $embedding in the index named $index."""
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

    def encode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Bolt values arrive as sent."""
        return params

    def stored_text(self, text: str) -> str:
        """Lucene's tokenizer splits words at line breaks: text is stored as it is."""
        return text

    def shown_text(self, text: str) -> str:
        return text

    def index_statements(
        self, schema: GraphSchema, vectors: bool, existing: list[dict[str, Any]]
    ) -> list[str]:
        """Idempotent DDL: full-text over text and title, lookups by id and name, vectors."""
        c, d, p = schema.chunk, schema.document, schema.person
        statements = [
            f"CREATE FULLTEXT INDEX {quote(schema.fulltext_index)} IF NOT EXISTS "
            f"FOR (c:{c}) ON EACH [c.{schema.text}, c.`title`] "
            # The English analyzer stems ("meetings" finds "meeting"), as SQLite's porter does.
            "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english'}}",
            f"CREATE RANGE INDEX {quote(schema.document_label.lower() + '_id')} IF NOT EXISTS "
            f"FOR (d:{d}) ON (d.id)",
            f"CREATE RANGE INDEX {quote(schema.person_label.lower() + '_name')} IF NOT EXISTS "
            f"FOR (p:{p}) ON (p.name)",
        ]
        if vectors:
            statements.append(
                f"CREATE VECTOR INDEX {quote(schema.vector_index)} IF NOT EXISTS "
                f"FOR (c:{c}) ON c.{schema.embedding} OPTIONS {{indexConfig: {{"
                f"`vector.dimensions`: {int(schema.dimensions)}, "
                "`vector.similarity_function`: 'cosine'}}"
            )
        return statements
