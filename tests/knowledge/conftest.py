"""Fixtures for the knowledge tests: a fresh SQLite store, documents, the sample folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteKnowledgeStore]:
    """An empty store in a temporary folder, closed after the test."""
    knowledge = SqliteKnowledgeStore(str(tmp_path / "knowledge.sqlite3"))
    yield knowledge
    knowledge.close()


@pytest.fixture
def make_doc() -> Callable[..., Document]:
    """Build a Document from chunk texts (or (text, speakers) pairs)."""

    def build(
        doc_id: str,
        *texts: str | tuple[str, tuple[str, ...]],
        title: str = "Untitled",
        date: str = "",
        sha: str = "sha-1",
        people: tuple[str, ...] = (),
        kind: str = "text",
    ) -> Document:
        chunks = []
        for seq, item in enumerate(texts):
            text, speakers = item if isinstance(item, tuple) else (item, ())
            chunks.append(Chunk(seq=seq, text=text, speakers=speakers))
        return Document(
            id=doc_id,
            title=title,
            kind=kind,
            source=f"{doc_id}.txt",
            date=date,
            sha256=sha,
            chunks=tuple(chunks),
            people=people,
        )

    return build
