"""Ingest real QMSum transcripts (from ../shared/datasets/qmsum-val when present)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.knowledge.formats.base import document_id
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from tests.support import QMSUM_DIR


@pytest.fixture
def qmsum_files(qmsum_dir: Path) -> list[Path]:
    files = sorted(qmsum_dir.glob("*.json"))[:3]
    assert len(files) == 3, f"fewer than 3 QMSum files in {qmsum_dir}"
    return files


def test_qmsum_files_ingest_as_speaker_transcripts(
    store: SqliteKnowledgeStore, qmsum_files: list[Path]
) -> None:
    summary = ingest_paths(store, [str(p) for p in qmsum_files], progress=False)
    assert (summary.documents_added, summary.errors) == (3, [])
    assert store.counts()["documents"] == 3 and store.counts()["chunks"] == summary.chunks

    meeting = json.loads(qmsum_files[0].read_text(encoding="utf-8"))
    turns = meeting["meeting_transcripts"]
    speakers = {t["speaker"] for t in turns}
    assert summary.people >= len(speakers)

    # A distinctive long turn is found verbatim, in its own meeting, under its speaker.
    turn = max(turns, key=lambda t: len(t["content"]))
    words = " ".join(turn["content"].split())
    results = store.search(" ".join(words.split()[:15]), 5, Deadline(5))
    assert results[0].document_id == document_id(f"{QMSUM_DIR.name}/{qmsum_files[0].name}")
    assert results[0].title == qmsum_files[0].stem
    assert f"{turn['speaker']}: {words[:80]}" in results[0].text
    assert set(results[0].speakers) <= speakers and turn["speaker"] in results[0].speakers


def test_qmsum_answers_are_not_ingested(
    store: SqliteKnowledgeStore, qmsum_files: list[Path]
) -> None:
    ingest_paths(store, [str(qmsum_files[0])], progress=False)
    meeting = json.loads(qmsum_files[0].read_text(encoding="utf-8"))
    answer = " ".join(meeting["general_query_list"][0]["answer"].split())
    for passage in store.search(answer, 20, Deadline(5)):
        assert answer[:60] not in passage.text
