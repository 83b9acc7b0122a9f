"""Knowledge: documents, chunks and retrieval behind the KnowledgeStore protocol."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bot.embedding import Embedder
from bot.errors import KnowledgeUnavailable
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document, KnowledgeStore

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "Chunk",
    "Document",
    "KnowledgeStore",
    "SqliteKnowledgeStore",
    "open_graph_store",
    "open_knowledge_store",
]

KNOWLEDGE_DB_NAME = "knowledge.sqlite3"


def open_knowledge_store(settings: Settings, embedder: Embedder | None = None) -> KnowledgeStore:
    """The graph store when `neo4j.uri` is set, else SQLite FTS5 in the data directory;
    `embedder` (built by the app factory when a model key is configured) adds vectors to
    either, fused with full-text hits.

    Neither connects to a server here: a graph that is down at start-up makes /health
    degraded and questions answered with "knowledge unavailable", never a failed start."""
    if settings.neo4j_uri:
        return open_graph_store(settings, embedder)
    try:
        os.makedirs(settings.data_dir, exist_ok=True)
    except OSError as exc:
        raise KnowledgeUnavailable(
            f"cannot create data directory {settings.data_dir!r}: {exc}"
        ) from exc
    return SqliteKnowledgeStore(
        os.path.join(settings.data_dir, KNOWLEDGE_DB_NAME),
        embedder=embedder,
        relevance_floor=settings.knowledge_relevance_floor,
    )


def open_graph_store(settings: Settings, embedder: Embedder | None = None) -> KnowledgeStore:
    """Neo4j or FalkorDB over Bolt, with the embedder's vectors unless `neo4j.embeddings`
    is false."""
    from bot.knowledge.graph.client import GraphClient
    from bot.knowledge.graph.schema import GraphSchema
    from bot.knowledge.graph.store import GraphKnowledgeStore

    schema = GraphSchema(
        chunk_label=settings.neo4j_chunk_label,
        document_label=settings.neo4j_document_label,
        person_label=settings.neo4j_person_label,
        text_property=settings.neo4j_text_property,
        embedding_property=settings.neo4j_embedding_property,
        fulltext_index=settings.neo4j_fulltext_index,
        vector_index=settings.neo4j_vector_index,
    )
    client = GraphClient(
        settings.neo4j_uri, settings.neo4j_user, settings.neo4j_password, settings.neo4j_database
    )
    return GraphKnowledgeStore(
        client,
        schema,
        dialect=settings.neo4j_dialect,
        embedder=embedder if settings.neo4j_embeddings else None,
        retrieval_query=settings.neo4j_retrieval_query,
        relevance_floor=settings.knowledge_relevance_floor,
    )
