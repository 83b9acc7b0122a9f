"""Fixtures for the knowledge tests: a fresh SQLite store, documents, synonyms for vectors,
PDF and Word files built in code."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document
from tests.fakes.mistral_server import embed
from tests.office_files import BOARD_MINUTES, STRATEGY_REVIEW, docx_bytes, encrypted_pdf, pdf_bytes
from tests.support import tree


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


@pytest.fixture
def synonym() -> Callable[[str], str]:
    """A made-up word the Mistral stand-in embeds exactly like the given one (the same
    hashed feature): only a vector search can see that the two mean the same."""

    def find(word: str) -> str:
        return next(w for w in (f"zq{i}" for i in itertools.count()) if embed(w) == embed(word))

    return find


@pytest.fixture(scope="session")
def office_files() -> dict[str, bytes]:
    """The PDF and Word files of the tests, by file name: text ones, a scan, and broken."""
    minutes = pdf_bytes(BOARD_MINUTES, title="Board minutes March")
    return {
        "board-minutes-march.pdf": minutes,
        "strategy-review.docx": docx_bytes(STRATEGY_REVIEW),
        "scanned-receipts.pdf": pdf_bytes([None, None]),
        "locked.pdf": encrypted_pdf(minutes, user_password="board-only"),
        "truncated.pdf": minutes[: len(minutes) // 2],
        "broken.docx": b"PK\x03\x04" + b"not really a zip archive" * 20,
    }


@pytest.fixture
def office_folder(tmp_path: Path, office_files: dict[str, bytes]) -> Callable[..., Path]:
    """Factory: a folder holding the named files of `office_files` (all by default)."""

    def make(name: str = "docs", *names: str) -> Path:
        return tree(tmp_path / name, {n: office_files[n] for n in names or office_files})

    return make
