"""Collections in the SQLite store: a search limited to some collections finds only their
documents, and ranks them exactly as a store holding only those documents would."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.deadline import Deadline
from bot.knowledge import sqlite_search, vector_leg
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document
from tests.fakes.mistral_server import embed

COLLECTIONS = ("general", "board", "hr-notes")
# Few words, so that documents share them and the statistics of one collection differ
# from another's; names as queries put forward.
WORDS = "budget nairobi funding timeline board salary review travel policy donors plan".split()


class HashEmbedder:
    """The Mistral stand-in's vectors, in process (our Embedder protocol): the property
    test builds hundreds of stores."""

    name, dimensions = "mistral-embed", 1024

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        return [embed(text) for text in texts]

    def close(self) -> None:
        pass


def document(i: int, collection: str, chunks: list[str], title: str) -> Document:
    return Document(
        id=f"d{i}",
        title=title,
        kind="text",
        source=f"d{i}.txt",
        date="",
        sha256=f"sha{i}",
        chunks=tuple(Chunk(seq, text) for seq, text in enumerate(chunks)),
        collection=collection,
    )


@contextmanager
def stores(*contents: list[Document], vectors: bool = False) -> Iterator[list]:
    """One store per list of documents, each in its own folder, closed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        opened = []
        try:
            for i, docs in enumerate(contents):
                store = SqliteKnowledgeStore(
                    str(Path(folder) / f"k{i}.sqlite3"),
                    embedder=HashEmbedder() if vectors else None,
                )
                opened.append(store)
                if docs:
                    store.upsert_many(docs)
            yield opened
        finally:
            for store in opened:
                store.close()


def ranked(passages: list) -> list[tuple[str, float]]:
    return [(p.chunk_id, p.score) for p in passages]


texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=25).map(" ".join)
documents = st.lists(
    st.tuples(
        st.sampled_from(COLLECTIONS),
        st.lists(texts, min_size=1, max_size=4),
        st.lists(st.sampled_from(WORDS), max_size=2).map(" ".join),
    ),
    min_size=1,
    max_size=12,
)
questions = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join), min_size=1, max_size=4
)
readable = st.sets(st.sampled_from(COLLECTIONS), min_size=1).map(frozenset)


def check_same_ranking(
    generated: list, allowed: frozenset[str], asked: list[str], vectors: bool
) -> None:
    docs = [
        document(i, c, chunks, title or "Notes") for i, (c, chunks, title) in enumerate(generated)
    ]
    only = [doc for doc in docs if doc.collection in allowed]
    with stores(docs, only, vectors=vectors) as (everything, permitted):
        for question in asked:
            limited = everything.search(question, 5, Deadline(10), allowed)
            alone = permitted.search(question, 5, Deadline(10))
            assert ranked(limited) == ranked(alone), question
            assert all(p.document_id in {d.id for d in only} for p in limited)


@pytest.mark.parametrize("vectors", [False, True], ids=["lexical", "hybrid"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=documents, allowed=readable, asked=questions)
def test_a_limited_search_ranks_as_a_store_of_only_those_collections(
    vectors: bool, generated: list, allowed: frozenset[str], asked: list[str]
) -> None:
    check_same_ranking(generated, allowed, asked, vectors)


def test_the_only_document_holding_the_words_is_not_found_outside_its_collection(
    store: SqliteKnowledgeStore,
) -> None:
    store.upsert(document(1, "board", ["The Nairobi office budget is 40,000 euros."], "Board"))
    store.upsert(document(2, "general", ["The travel policy is in the handbook."], "Handbook"))
    assert [p.document_id for p in store.search("Nairobi budget", 5, Deadline(5))] == ["d1"]
    assert store.search("Nairobi budget", 5, Deadline(5), frozenset({"general"})) == []
    assert store.search("Nairobi budget", 5, Deadline(5), frozenset()) == []
    assert [
        p.document_id for p in store.search("Nairobi budget", 5, Deadline(5), frozenset({"board"}))
    ] == ["d1"]


def test_a_moved_document_is_found_in_its_new_collection_only(store: SqliteKnowledgeStore) -> None:
    store.upsert(document(1, "board", ["The Nairobi office budget is 40,000 euros."], "Board"))
    version = store.version()
    assert store.move(["d1", "missing"], "general") == 1
    assert store.version() != version  # answers cached for the old readers go
    general = store.search("Nairobi budget", 5, Deadline(5), frozenset({"general"}))
    assert [p.document_id for p in general] == ["d1"]
    assert store.search("Nairobi budget", 5, Deadline(5), frozenset({"board"})) == []
    assert [d.collection for d in store.documents()] == ["general"]


def test_a_document_stored_again_keeps_its_collection_unless_given_one(
    store: SqliteKnowledgeStore,
) -> None:
    store.upsert(document(1, "board", ["Salary review in March."], "Board"))
    store.upsert(document(1, "", ["Salary review moved to April."], "Board"))
    assert [d.collection for d in store.documents()] == ["board"]
    store.upsert(document(2, "", ["Travel policy."], "Handbook"))
    assert {d.id: d.collection for d in store.documents()}["d2"] == "general"
    store.upsert(document(1, "hr-notes", ["Salary review moved to May."], "Board"))
    assert {d.id: d.collection for d in store.documents()}["d1"] == "hr-notes"


def test_a_question_naming_a_collections_token_matches_no_collection(
    store: SqliteKnowledgeStore,
) -> None:
    """A collection is indexed as a token; typed into a question it must find nothing."""
    store.upsert(document(1, "board", ["The Nairobi office budget."], "Board"))
    token = b"board".hex()
    assert store.search(token, 5, Deadline(5)) == []
    assert store.search(token, 5, Deadline(5), frozenset({"board"})) == []


def test_a_store_made_before_collections_gets_them_and_keeps_its_documents(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    with SqliteKnowledgeStore(str(path)) as store:
        assert [(d.id, d.collection) for d in store.documents()] == [("d1", "general")]
        found = store.search("Nairobi budget", 5, Deadline(5), frozenset({"general"}))
        assert [p.chunk_id for p in found] == ["d1:0"]
        assert store.search("Nairobi budget", 5, Deadline(5), frozenset({"board"})) == []


# The tables of a store written before collections, holding one document.
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
    date TEXT NOT NULL, sha256 TEXT NOT NULL, people TEXT NOT NULL DEFAULT '[]',
    updated_at REAL NOT NULL DEFAULT 0);
CREATE TABLE chunks (
    pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT NOT NULL, speakers TEXT NOT NULL DEFAULT '[]');
CREATE INDEX chunks_by_doc ON chunks (doc_id, seq);
CREATE VIEW chunk_search AS
    SELECT c.pk AS pk, c.doc_id AS doc_id, c.text AS text, d.title AS title,
           c.speakers AS speakers
    FROM chunks c JOIN documents d ON d.id = c.doc_id;
CREATE VIRTUAL TABLE chunk_fts USING fts5(
    text, title, speakers, content='chunk_search', content_rowid='pk',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE doc_fts USING fts5(
    text, title, content='', tokenize='porter unicode61 remove_diacritics 2');
INSERT INTO meta VALUES ('version', '3'), ('instance', 'old'), ('doc_fts', '1');
INSERT INTO documents VALUES ('d1', 'Board', 'text', 'd1.txt', '', 'sha', '[]', 0);
INSERT INTO chunks VALUES (1, 'd1:0', 'd1', 0, 'The Nairobi office budget.', '[]');
INSERT INTO chunk_fts (rowid, text, title, speakers)
    VALUES (1, 'The Nairobi office budget.', 'Board', '[]');
INSERT INTO doc_fts (rowid, text, title) VALUES (1, 'The Nairobi office budget.', 'Board');
"""


@pytest.mark.parametrize("vectors", [False, True])
def test_rows_of_other_collections_never_fill_the_top_k(vectors: bool) -> None:
    """Twenty forbidden chunks match better than the one permitted: the permitted one is
    still found (a filter after the top k would return nothing)."""
    forbidden = [
        document(i, "board", ["budget budget budget nairobi"], "budget") for i in range(20)
    ]
    permitted = document(99, "general", ["the budget for the year"], "Plan")
    with stores([*forbidden, permitted], vectors=vectors) as (store,):
        found = store.search("budget nairobi", 3, Deadline(10), frozenset({"general"}))
        assert [p.document_id for p in found] == ["d99"]


def test_a_document_written_during_a_limited_search_is_judged_by_the_same_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store holds only `general` when the search decides what to limit; a board
    document committed by another worker before the search's statements run must not be
    found by them."""
    path = str(tmp_path / "k.sqlite3")
    with SqliteKnowledgeStore(path) as store, SqliteKnowledgeStore(path) as writer:
        store.upsert(document(1, "general", ["The travel policy is in the handbook."], "Handbook"))
        real = sqlite_search.search

        def after_a_commit(*args, **kwargs):
            writer.upsert(document(2, "board", ["The CEO salary budget is 250,000."], "Pay"))
            return real(*args, **kwargs)

        monkeypatch.setattr(sqlite_search, "search", after_a_commit)
        assert store.search("salary budget", 5, Deadline(5), frozenset({"general"})) == []
        monkeypatch.setattr(sqlite_search, "search", real)
        assert store.search("salary budget", 5, Deadline(5), frozenset({"general"})) == []


def test_a_search_meanwhile_a_reload_of_the_vector_scan_never_meets_another_scans_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread reloads the scan after a re-ingest (new rows, reading their collections);
    another, its question vector in hand, asks for the nearest `general` chunks meanwhile:
    it gets them from one whole scan, never the new rows under the old mask."""
    with SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"), embedder=HashEmbedder()) as store:
        store.upsert(document(0, "general", ["travel one", "travel two", "travel three"], "G"))
        store.upsert(document(1, "board", ["salary one", "salary two", "salary three"], "B"))
        store.upsert(document(2, "general", ["handbook a", "handbook b", "handbook c"], "H"))
        store.search("travel", 5, Deadline(10), frozenset({"general"}))  # the scan is loaded
        leg = store.vectors
        assert leg is not None
        with store._connection() as conn:
            vector = leg.question(conn, "salary", Deadline(10))
        # Re-ingested: its chunks get new rows, the board ones move up in the scan.
        store.upsert(document(0, "general", ["travel ONE", "travel TWO", "travel THREE"], "G"))
        reading, go = threading.Event(), threading.Event()
        read_collections = vector_leg._Collections.of

        def slow(conn, pks):
            reading.set()
            go.wait(10)
            return read_collections(conn, pks)

        monkeypatch.setattr(vector_leg._Collections, "of", staticmethod(slow))
        reload = threading.Thread(
            target=store.search, args=("travel", 5, Deadline(30), frozenset({"general"}))
        )
        reload.start()
        assert reading.wait(10)
        try:
            with store._connection() as conn:
                near = [pk for pk, _ in leg.nearest(conn, vector, 10, frozenset({"general"}))]
                marks = ",".join("?" * len(near))
                found = conn.execute(
                    "SELECT DISTINCT d.collection FROM chunks c JOIN documents d "
                    f"ON d.id = c.doc_id WHERE c.pk IN ({marks})",
                    near,
                ).fetchall()
        finally:
            go.set()
            reload.join()
        assert found == [("general",)]


def test_the_document_scores_are_those_of_a_store_of_only_those_collections_at_any_count() -> None:
    """A hundred permitted documents match one word; the permitted document that holds the
    other (and the most of it, so its score is the one the ranking divides by) matters
    little to the whole table, where the forbidden documents hold that word too."""
    docs = [
        document(n, "general", ["beta " + "filler " * (n % 7)], "beta" if n % 2 else "Notes")
        for n in range(100)
    ]
    docs.append(document(100, "general", ["alpha pad pad pad pad pad"] * 200, "Zed"))
    docs += [document(n, "board", ["alpha secret"], "Board") for n in range(101, 301)]
    only = [doc for doc in docs if doc.collection == "general"]
    with stores(docs, only) as (everything, permitted):
        for question in ("alpha beta", "beta alpha"):
            limited = everything.search(question, 5, Deadline(10), frozenset({"general"}))
            assert ranked(limited) == ranked(permitted.search(question, 5, Deadline(10)))
