"""Listing and removing documents: the SQLite store, target selection, ingest --prune."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.knowledge.catalog import bundled_sample, select, stale
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Document, DocumentInfo
from tests.support import SAMPLE, tree


def found(store: SqliteKnowledgeStore, query: str) -> list[str]:
    return [p.document_id for p in store.search(query, 10, Deadline(5))]


def test_documents_lists_each_stored_document_by_source(
    store: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    store.upsert(make_doc("b", "one", "two", title="Bravo", date="2026-01-02", kind="markdown"))
    store.upsert(make_doc("a", "three", title="Alpha"))
    listed = store.documents()
    assert [(d.id, d.title, d.source, d.kind, d.date, d.chunks) for d in listed] == [
        ("a", "Alpha", "a.txt", "text", "", 1),
        ("b", "Bravo", "b.txt", "markdown", "2026-01-02", 2),
    ]
    assert all(abs(d.ingested_at - time.time()) < 60 for d in listed)


def test_remove_deletes_documents_chunks_and_their_index_rows(
    store: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    store.upsert(make_doc("a", "zebra alpha", title="Alpha", people=("Ann",)))
    store.upsert(make_doc("b", "zebra beta", "zebra gamma", title="Bravo", people=("Bo",)))
    version = store.version()
    assert store.remove(["b", "b", "missing"]) == 1  # only what existed is counted
    assert store.version() != version  # cached answers made from "b" are not served
    assert found(store, "zebra") == ["a"]
    assert [d.id for d in store.documents()] == ["a"]
    assert store.counts() == {"documents": 1, "chunks": 1, "people": 1}
    # The chunk rowids of "b" are free again: a new chunk that reuses one must not inherit
    # the removed words from the external-content FTS index.
    store.upsert(make_doc("c", "otter", "otter again", title="Charlie"))
    assert found(store, "gamma beta") == []
    with sqlite3.connect(store.path) as conn:  # raises when index and content disagree
        conn.execute("INSERT INTO chunk_fts (chunk_fts, rank) VALUES ('integrity-check', 1)")


def test_removing_nothing_keeps_the_version(
    store: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    store.upsert(make_doc("a", "zebra"))
    version = store.version()
    assert store.remove([]) == 0 and store.remove(["missing"]) == 0
    assert store.version() == version and found(store, "zebra") == ["a"]


def info(source: str, title: str = "") -> DocumentInfo:
    return DocumentInfo(source, title or source, source, "text", "", 1, 0.0)


LISTED = [
    info("notes/budget.md", "Budget"),
    info("notes/team/call.txt", "Call"),
    info("notes-old/budget.md", "Budget"),
    info("sample/uk.md", "UK timeline"),
]


@pytest.mark.parametrize(
    ("targets", "chosen", "unmatched"),
    [
        (["notes/budget.md"], ["notes/budget.md"], []),
        (["Budget"], ["notes-old/budget.md", "notes/budget.md"], []),  # a title: both
        (["notes/"], ["notes/budget.md", "notes/team/call.txt"], []),  # not notes-old/
        (["notes"], ["notes/budget.md", "notes/team/call.txt"], []),
        (["notes/team/"], ["notes/team/call.txt"], []),
        (["sample/", "UK timeline"], ["sample/uk.md"], []),
        (["budget.md", "sample/", "note"], ["sample/uk.md"], ["budget.md", "note"]),
        (["/", ""], [], ["/", ""]),
    ],
)
def test_a_target_is_a_source_a_title_or_a_folder(targets, chosen, unmatched) -> None:
    documents, missing = select(LISTED, targets)
    assert sorted(d.source for d in documents) == chosen
    assert missing == unmatched


def test_stale_and_bundled_sample_look_below_folder_keys_only() -> None:
    present = {"notes/budget.md"}
    assert [d.source for d in stale(LISTED, ["notes", ""], present)] == ["notes/team/call.txt"]
    assert stale(LISTED, [], present) == []
    assert [d.source for d in bundled_sample(LISTED)] == ["sample/uk.md"]


def test_ingest_prune_removes_only_the_gone_files_of_the_given_folders(
    store: SqliteKnowledgeStore, tmp_path: Path
) -> None:
    notes = tree(tmp_path / "notes", {"keep.txt": "Zebra fund.", "gone.txt": "Otter review."})
    ingest_paths(store, [str(SAMPLE), str(notes)], progress=False)
    (notes / "gone.txt").unlink()

    kept = ingest_paths(store, [str(notes)], progress=False)  # no --prune: nothing goes
    assert kept.removed == [] and store.counts()["documents"] == 7
    version = store.version()
    single = ingest_paths(store, [str(notes / "keep.txt")], progress=False, prune=True)
    assert single.removed == []  # a file argument names no folder to prune

    pruned = ingest_paths(store, [str(notes)], progress=False, prune=True)
    assert pruned.removed == ["notes/gone.txt"] and pruned.documents_skipped == 1
    assert store.version() != version
    sources = [d.source for d in store.documents()]
    assert "notes/gone.txt" not in sources and "notes/keep.txt" in sources
    assert len(sources) == 6  # the five sample documents stay
    assert found(store, "otter") == [] and len(found(store, "zebra")) == 1
