"""The KnowledgeStore protocol and the documents it holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.deadline import Deadline
from bot.models import Passage
from bot.readers import DEFAULT_COLLECTION

# The collections a search may draw from; None: every collection (none configured).
Readable = frozenset[str] | None


@dataclass(frozen=True)
class Chunk:
    """A retrievable slice of a document."""

    seq: int
    text: str
    speakers: tuple[str, ...] = ()
    # Where in its file the chunk is ("p. 3", a Word heading), shown after the title; a
    # chunk never spans two pages or sections, so the label is always right.
    location: str = ""


@dataclass(frozen=True)
class Document:
    """A parsed source file, ready to store."""

    id: str  # stable across re-ingests of the same path
    title: str
    kind: str  # "text", "markdown", "transcript", "chat", "pdf", "word"
    source: str  # the file name as given to ingest
    date: str  # ISO date or ""
    sha256: str  # of the file's bytes: unchanged files are skipped
    chunks: tuple[Chunk, ...]
    people: tuple[str, ...] = ()  # speakers / attendees
    # Who may read it (bot/readers.py); "" keeps a stored document's collection and puts a
    # new one in the default ("general").
    collection: str = ""


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document as `documents` lists it (its chunks counted, not loaded)."""

    id: str
    title: str
    source: str  # as ingested: "<root folder name>/<path below it>"
    kind: str
    date: str
    chunks: int
    ingested_at: float  # Unix time of the last write; 0 if unknown
    collection: str = DEFAULT_COLLECTION
    sha256: str = ""  # of the file as ingested ("" for an interrupted graph ingest)


class KnowledgeStore(Protocol):
    """Where passages come from. Every method may raise KnowledgeUnavailable."""

    backend: str

    def search(
        self, query: str, k: int, deadline: Deadline, collections: Readable = None
    ) -> list[Passage]:
        """The `k` most relevant passages for free user text, best first; [] when none is
        relevant enough (the store's relevance floor: the knowledge does not cover the
        question), which the use case answers with "not found" instead of a guess.

        With `collections`, only their documents exist for the search: it filters inside
        the store's own query and ranks with their statistics alone, so the result is what
        a store holding only those collections would give."""
        ...

    def document_sha(self, doc_id: str) -> str | None:
        """The stored sha256 of a document, or None if it is not stored."""
        ...

    def upsert(self, doc: Document) -> None:
        """Store a document, replacing any earlier version and its chunks."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every stored document, ordered by source."""
        ...

    def remove(self, document_ids: Iterable[str]) -> int:
        """Delete these documents with their chunks (a new version); how many existed."""
        ...

    def move(self, document_ids: Iterable[str], collection: str) -> int:
        """Put these documents in `collection` (a new version); how many existed."""
        ...

    def counts(self) -> dict[str, int]:
        """{"documents": n, "chunks": n, "people": n}."""
        ...

    def people(self, limit: int, deadline: Deadline, collections: Readable = None) -> list[str]:
        """Up to `limit` names of the people in the documents (of `collections`, when
        given), those in the most documents first (voice notes are transcribed with them as
        spelling hints)."""
        ...

    def version(self) -> str:
        """Changes whenever the content changes (answer-cache invalidation)."""
        ...

    def ping(self) -> None:
        """Cheap liveness check; raises KnowledgeUnavailable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
