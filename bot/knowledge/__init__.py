"""Knowledge: documents, chunks and retrieval behind the KnowledgeStore protocol."""

from __future__ import annotations

import os

from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document, KnowledgeStore, KnowledgeUnavailable

__all__ = [
    "Chunk",
    "Document",
    "KnowledgeStore",
    "KnowledgeUnavailable",
    "SqliteKnowledgeStore",
    "open_knowledge_store",
]

KNOWLEDGE_DB_NAME = "knowledge.sqlite3"


def open_knowledge_store(data_dir: str) -> KnowledgeStore:
    """The embedded SQLite FTS5 store at `{data_dir}/knowledge.sqlite3` (dir created)."""
    # A graph backend (Neo4j / FalkorDB) will be chosen here once settings configure one.
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as exc:
        raise KnowledgeUnavailable(f"cannot create data directory {data_dir!r}: {exc}") from exc
    return SqliteKnowledgeStore(os.path.join(data_dir, KNOWLEDGE_DB_NAME))
