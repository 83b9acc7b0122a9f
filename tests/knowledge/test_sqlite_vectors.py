"""Vectors in the SQLite store, against the Mistral stand-in through the real SDK: made at
ingest and reused, fused with full-text, degraded to full-text, tied to their model."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Document
from bot.knowledge.vector_index import BinaryIndex, quantise, rescore
from tests.fakes.mistral_server import MistralStub
from tests.support import REPO, SAMPLE, run_threads

KEY = "sk-sqlite-vectors-0123456789"


class Truncated:
    """The stand-in's vectors cut to 512 numbers: an embedding model of another size."""

    name, dimensions = "mistral-embed", 512

    def __init__(self, inner: MistralEmbedder) -> None:
        self.inner = inner

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        return [v[:512] for v in self.inner.embed(texts, deadline)]

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def open_store(
    tmp_path: Path, mistral: MistralStub
) -> Iterator[Callable[..., SqliteKnowledgeStore]]:
    """Factory: a store on one file; `embedder` "mistral" (default), None, or an embedder."""
    stores: list[SqliteKnowledgeStore] = []

    def build(embedder: object = "mistral") -> SqliteKnowledgeStore:
        if embedder == "mistral":
            embedder = MistralEmbedder(KEY, server_url=mistral.url)
        store = SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"), embedder=embedder)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def two_docs(open_store, make_doc: Callable[..., Document], mistral: MistralStub):
    """A hybrid store with a budget chunk, a rules chunk and a falcon chunk, among 20 other
    chunks (so a word in one chunk is rare); the stand-in's log emptied."""
    store = open_store()
    store.upsert(make_doc("lex", "Quarterly budget review for the travel line."))
    store.upsert(make_doc("sem", "Reimbursement rules.", "The falcon project timeline."))
    store.upsert(make_doc("other", *[f"Weather note {i} for the office." for i in range(20)]))
    mistral.reset()
    return store


def embedded(mistral: MistralStub) -> list[list[str]]:
    """The texts of each embeddings request the stand-in received."""
    bodies = [r.json for r in mistral.requests if r.path == "/v1/embeddings"]
    return [list(b.get("input") or b.get("inputs")) for b in bodies]


def vector_rows(store: SqliteKnowledgeStore) -> list[tuple]:
    with sqlite3.connect(store.path) as conn:
        return conn.execute("SELECT pk, model FROM chunk_vectors ORDER BY pk").fetchall()


def ids(passages) -> list[str]:
    return [p.chunk_id for p in passages]


def test_vectors_are_made_at_ingest_in_batches_and_reused_for_unchanged_text(
    open_store, mistral, tmp_path
) -> None:
    corpus = tmp_path / "notes"
    shutil.copytree(SAMPLE, corpus)
    store = open_store()
    summary = ingest_paths(store, [str(corpus)], progress=False)
    # Five files, 25 chunks: one request (the files share a batch), every chunk in it.
    assert [len(texts) for texts in embedded(mistral)] == [summary.chunks] == [25]
    status = store.vectors.status()
    assert (status.stored, status.chunks, status.with_vectors) == ("mistral-embed/1024", 25, 25)
    assert len(vector_rows(store)) == 25

    mistral.reset()
    ingest_paths(store, [str(corpus)], progress=False)  # unchanged files: skipped
    assert embedded(mistral) == []
    timeline = corpus / "uk-engagement-timeline.md"
    timeline.write_text(timeline.read_text().replace("Westminster", "Whitehall"))
    changed = ingest_paths(store, [str(corpus)], progress=False)
    assert changed.documents_updated == 1
    # Only the chunk whose text changed is embedded again; its neighbours are reused.
    [[text]] = embedded(mistral)
    assert "Whitehall" in text
    assert store.vectors.status().with_vectors == 25 and len(vector_rows(store)) == 25


def test_the_vector_leg_finds_a_synonym_full_text_cannot(two_docs, open_store, synonym) -> None:
    lexical = open_store(embedder=None)  # the same file, full-text only
    word = synonym("falcon")
    assert lexical.search(word, 3, Deadline(5)) == []
    assert ids(two_docs.search(word, 3, Deadline(5)))[0] == "sem:1"
    # Both legs fused: the budget chunk by its word, the falcon chunk by its synonym.
    assert ids(lexical.search(f"{word} budget", 2, Deadline(5))) == ["lex:0"]
    assert set(ids(two_docs.search(f"{word} budget", 2, Deadline(5)))) == {"lex:0", "sem:1"}


@pytest.mark.parametrize(
    ("failure", "value"), [("delay", 30.0), ("statuses", [500] * 20)], ids=["timeout", "http500"]
)
def test_a_failed_question_embedding_falls_back_to_full_text_inside_the_deadline(
    two_docs, open_store, mistral, caplog, failure, value
) -> None:
    expected = ids(open_store(embedder=None).search("travel budget", 3, Deadline(5)))
    setattr(mistral, failure, value)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        found = two_docs.search("travel budget", 3, Deadline(2.0))
    elapsed = time.monotonic() - started
    assert ids(found) == expected == ["lex:0"]
    assert elapsed < 1.5  # the embedding had half of the 2 s; full-text took the rest
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.knowledge.vector_leg"]
    assert line.startswith("question embedding failed") and line.endswith("full-text only")
    mistral.reset()
    assert len(two_docs.search("travel budget", 3, Deadline(5))) == 3  # hybrid again


def test_threads_searching_while_the_index_reloads_agree(two_docs, make_doc, synonym) -> None:
    word = f"reimbursement rules {synonym('falcon')}"
    assert "more:0" not in ids(two_docs.search(word, 3, Deadline(5)))  # the index is loaded
    two_docs.upsert(make_doc("more", "The falcon budget, again."))  # and stale now
    found: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                found.append(ids(two_docs.search(word, 3, Deadline(5))))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    run_threads(worker, 8)
    assert errors == [] and len(found) == 40
    assert all(result == found[0] for result in found) and "more:0" in found[0]


@pytest.mark.parametrize("other", ["name", "size"])
def test_a_model_change_is_detected_and_rebuild_replaces_the_vectors(
    open_store, make_doc, mistral, caplog, other
) -> None:
    old_embedder = MistralEmbedder(KEY, server_url=mistral.url)
    if other == "name":
        old_embedder.name = "old-embed"
    old = open_store(old_embedder if other == "name" else Truncated(old_embedder))
    old.upsert(make_doc("sem", "Reimbursement rules.", "The falcon project timeline."))
    stored = old.vectors.model
    assert stored in ("old-embed/1024", "mistral-embed/512")
    store = open_store()  # mistral-embed/1024 on the same file
    mistral.reset()
    with caplog.at_level(logging.WARNING):
        # Full text only (never compared with `old`'s vectors): the falcon chunk alone.
        assert ids(store.search("falcon", 3, Deadline(5))) == ["sem:1"]
        store.search("falcon", 3, Deadline(5))
    assert embedded(mistral) == []  # the question is not even embedded
    assert caplog.text.count(f"knowledge vectors are {stored}, the embedder is mistral-embed/1024")
    assert store.vectors.status().stored == stored and store.vectors.status().with_vectors == 0

    version = store.version()
    rebuilt = store.vectors.rebuild()
    assert (rebuilt.embedded, rebuilt.reused, rebuilt.replaced) == (2, 0, 2)
    assert store.version() != version  # answers cached from the old retrieval are stale
    # Hybrid: the nearest chunks join the full-text hit (a store this small: all of them).
    assert ids(store.search("falcon", 3, Deadline(5))) == ["sem:1", "sem:0"]
    assert {model for _, model in vector_rows(store)} == {"mistral-embed/1024"}
    # Now the old model is the stranger: full text only.
    assert ids(old.search("falcon", 3, Deadline(5))) == ["sem:1"]
    assert store.vectors.rebuild().embedded == 0  # nothing left to do


def test_replacing_or_removing_a_document_removes_its_vectors(open_store, make_doc) -> None:
    store = open_store()
    store.upsert(make_doc("a", "One.", "Two.", "Three."))
    store.upsert(make_doc("b", "Other."))
    assert len(vector_rows(store)) == 4
    store.upsert(make_doc("a", "Only one now.", sha="sha-2"))
    assert len(vector_rows(store)) == 2
    open_store(embedder=None).remove(["a"])  # a process without a key removes it too
    with sqlite3.connect(store.path) as conn:
        [(pk,)] = conn.execute("SELECT pk FROM chunks").fetchall()
    assert [row[0] for row in vector_rows(store)] == [pk]


def test_an_embedding_failure_at_ingest_stores_the_document_for_full_text(
    open_store, make_doc, mistral, caplog
) -> None:
    store = open_store()
    mistral.statuses = [401]
    with caplog.at_level(logging.WARNING):
        store.upsert(make_doc("a", "Budget notes."))
    assert "chunks stored without vectors" in caplog.text
    assert ids(store.search("budget", 3, Deadline(5))) == ["a:0"]
    assert store.vectors.status().with_vectors == 0
    assert store.vectors.rebuild().embedded == 1  # what `ingest --reembed` does
    assert store.vectors.status().with_vectors == 1


def test_the_scan_and_rerank_find_the_nearest_vectors_among_thousands() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((5000, 1024)).astype(np.float32)
    query = vectors[0] / np.linalg.norm(vectors[0])
    # Ten neighbours at falling similarity to the query, hidden among random vectors.
    near = [17, 230, 999, 1200, 2048, 3000, 3333, 4001, 4500, 4999]
    for rank, row in enumerate(near):
        vectors[row] = query * (0.9 - rank * 0.05) + rng.standard_normal(1024) * 0.02
    codes = quantise(vectors.tolist(), 1024)
    index = BinaryIndex.load([[(pk, bits) for pk, (bits, _) in enumerate(codes)]], len(codes))
    candidates = index.nearest(quantise([query.tolist()], 1024)[0][0], 200)
    ranked = rescore(query, [(pk, codes[pk][1]) for pk in candidates])
    assert ranked[:11] == [0, *near]


@pytest.mark.usefixtures("qmsum_dir")
def test_the_scale_benchmark_measures_the_hybrid_store(tmp_path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--sizes", "150,400", "--stores", "sqlite-hybrid", "--questions", "5", "--doc", doc]
    script = REPO / "benchmarks" / "retrieval_scale.py"
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = doc.read_text()
    assert "| SQLite hybrid | 400 |" in text and "SQLite hybrid at 400 chunks: vector index" in text
    assert "- Target: SQLite hybrid p50 under 30 ms at 100,000 chunks:" in text
