"""Ingest: walking folders, skipping unchanged files, replacing changed ones, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.formats.base import document_id
from bot.knowledge.ingest import discover, ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from tests.fakes.clock import Clock
from tests.support import FIXTURES, tree


def found(store: SqliteKnowledgeStore, query: str) -> set[str]:
    return {p.document_id for p in store.search(query, 10, Deadline(5))}


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return tree(
        tmp_path / "notes",
        {
            "budget.txt": "Title: Budget\nThe audit starts in March.",
            "team/handbook.md": "# Handbook\nWrite decisions down.",
            "team/call.txt": "Ann: Hello.\nBo: Hi Ann.\nAnn: Let's begin.\n",
            "meeting.json": json.dumps(
                {"meeting_transcripts": [{"speaker": "PhD A", "content": "The corpus is ready ."}]}
            ),
            ".hidden/secret.txt": "hidden",
            ".notes.txt": "hidden too",
            "image.png": b"\x89PNG",
        },
    )


def test_ingest_walks_folders_and_stores_supported_files(
    store: SqliteKnowledgeStore, notes: Path
) -> None:
    clock = Clock(100.0, step=2.5)  # read as the run starts (100 s) and ends (102.5 s)
    summary = ingest_paths(store, [str(notes)], progress=False, clock=clock)
    assert (summary.documents_added, summary.documents_skipped, summary.errors) == (4, 0, [])
    assert summary.chunks == store.counts()["chunks"] == 4
    assert summary.people == 3  # Ann, Bo, PhD A
    assert summary.seconds == 2.5
    assert found(store, "audit") == {document_id("notes/budget.txt")}
    assert found(store, "corpus") == {document_id("notes/meeting.json")}
    assert found(store, "hidden") == set()


def test_document_ids_are_stable_and_keyed_by_root_name(tmp_path: Path, notes: Path) -> None:
    files, errors, ignored = discover([str(notes), str(notes / "budget.txt")])
    assert errors == [] and ignored == {".png": 1}  # counted, not named: see test_ingest_files
    keys = [f.key for f in files]
    assert keys == sorted(set(keys), key=keys.index)  # the explicit file is not listed twice
    assert "notes/budget.txt" in keys and "notes/team/call.txt" in keys
    other = tree(tmp_path / "other", {"budget.txt": "x"})
    assert discover([str(other)])[0][0].key == "other/budget.txt"  # distinct from notes/


def test_unchanged_files_are_skipped(store: SqliteKnowledgeStore, notes: Path) -> None:
    ingest_paths(store, [str(notes)], progress=False)
    version = store.version()
    again = ingest_paths(store, [str(notes)], progress=False)
    assert (again.documents_added, again.documents_updated, again.documents_skipped) == (0, 0, 4)
    assert again.chunks == 0
    assert store.version() == version  # nothing written
    single = ingest_paths(store, [str(notes / "budget.txt")], progress=False)
    assert single.documents_skipped == 1  # same id whether given as a folder or a file


def test_changed_files_replace_their_chunks(store: SqliteKnowledgeStore, notes: Path) -> None:
    ingest_paths(store, [str(notes)], progress=False)
    (notes / "budget.txt").write_text("Title: Budget\nThe review moved to April.")
    summary = ingest_paths(store, [str(notes)], progress=False)
    assert (summary.documents_updated, summary.documents_skipped) == (1, 3)
    assert found(store, "audit") == set()  # no stale chunk survives
    assert found(store, "review April") == {document_id("notes/budget.txt")}
    assert store.counts()["documents"] == 4


def test_bad_files_are_errors_not_crashes(store: SqliteKnowledgeStore, tmp_path: Path) -> None:
    root = tree(
        tmp_path / "mixed",
        {
            "good.txt": "Kenya programme notes.",
            "broken.json": '{"meeting_transcripts": [',
            "binary.txt": b"\x00\x00\x00",
        },
    )
    summary = ingest_paths(
        store, [str(root), str(tmp_path / "missing"), str(tmp_path / "x.pdf")], progress=False
    )
    assert summary.documents_added == 1
    assert found(store, "Kenya") == {document_id("mixed/good.txt")}
    errors = "\n".join(summary.errors)
    assert len(summary.errors) == 4
    for fragment in ("mixed/broken.json", "mixed/binary.txt", "missing", "x.pdf"):
        assert fragment in errors


def test_progress_callback_is_called_per_file(store: SqliteKnowledgeStore, notes: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    ingest_paths(store, [str(notes)], progress=lambda *args: calls.append(args))
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert {c[1] for c in calls} == {4}
    assert all(c[2].startswith("notes/") for c in calls)


def test_progress_bar_goes_to_stderr_only_when_asked(
    store: SqliteKnowledgeStore, notes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_paths(store, [str(notes)], progress=True)
    captured = capsys.readouterr()
    assert "4/4" in captured.err and captured.out == ""
    ingest_paths(store, [str(notes)], progress=False)
    ingest_paths(store, [str(notes)])  # default: only on a terminal, and tests have none
    assert capsys.readouterr().err == ""


def test_webvtt_and_whatsapp_exports_are_ingested_and_searchable(
    store: SqliteKnowledgeStore,
) -> None:
    summary = ingest_paths(store, [str(FIXTURES)], progress=False)
    assert summary.errors == [] and summary.documents_added == 7
    assert summary.people == 4  # Amara, Jonas, Priya, Tom across calls and chats
    top = store.search("when will Defra confirm the UK line?", 3, Deadline(5))[0]
    assert "Defra" in top.text
    chat = store.search("Nairobi travel booked", 3, Deadline(5))[0]
    assert chat.source == "WhatsApp Chat with Tom Fletcher (2024-02-03)"


def test_an_ingest_leaves_each_full_text_index_in_one_segment(
    store: SqliteKnowledgeStore, tmp_path: Path
) -> None:
    # Batches commit one by one, each adding a segment every search must look terms up
    # in; the ingest merges them at the end (issue 19: about 15% of a search's SQLite time).
    notes = tree(
        tmp_path / "many",
        {f"note{n:03}.txt": f"Note {n}: the audit of site {n}." for n in range(150)},
    )
    ingest_paths(store, [str(notes)], progress=False)
    with sqlite3.connect(store.path) as conn:
        for table in ("chunk_fts_idx", "doc_fts_idx"):
            assert conn.execute(f"SELECT count(DISTINCT segid) FROM {table}").fetchone() == (1,)
    best = store.search("audit of site 149", 1, Deadline(5))
    assert [p.document_id for p in best] == [document_id("many/note149.txt")]


def test_a_merge_that_fails_after_the_documents_are_stored_fails_nothing(
    store: SqliteKnowledgeStore, notes: Path, monkeypatch, caplog
) -> None:
    # Another writer (a document added from the phone) may hold the file past the wait.
    def locked() -> None:
        raise KnowledgeUnavailable("sqlite: database is locked")

    monkeypatch.setattr(store, "optimize", locked)
    summary = ingest_paths(store, [str(notes)], progress=False)
    assert (summary.documents_added, summary.errors) == (4, [])
    assert found(store, "audit") == {document_id("notes/budget.txt")}
    assert "index merge skipped" in caplog.text
