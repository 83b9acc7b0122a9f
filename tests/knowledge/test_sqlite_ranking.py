"""The SQLite store's ranking (sqlite_rank.py) and relevance floor (relevance.py): document
evidence lifts a chunk, and a question the knowledge does not cover finds nothing, full
text or hybrid (the Mistral stand-in through the real SDK); the document index and the
document vectors stay in step with the chunks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.knowledge import relevance, sqlite_rank, sqlite_search
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore, build_match_query
from bot.knowledge.store import Document
from tests.fakes.mistral_server import MistralStub
from tests.support import SAMPLE

KEY = "sk-sqlite-ranking-0123456789"
OFFTOPIC = "What is a good recipe for banana bread?"  # only "good" is in the sample
NOWHERE = "What is the capital of Peru?"  # no word of it is
COVERED = "Why did we stop working on Germany?"
QUERY = "dredging permit harbour"


def ids(passages) -> list[str]:
    return [p.chunk_id for p in passages]


def plain_bm25(store: SqliteKnowledgeStore, query: str) -> list[str]:
    """Chunk ids by their own weighted BM25 alone, as the store ranked before."""
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute(
            "SELECT c.id FROM chunk_fts JOIN chunks c ON c.pk = chunk_fts.rowid "
            "WHERE chunk_fts MATCH ? ORDER BY bm25(chunk_fts, 1.0, 2.0, 1.0)",
            (build_match_query(query),),
        ).fetchall()
    return [chunk_id for (chunk_id,) in rows]


@pytest.fixture
def harbour(store: SqliteKnowledgeStore, make_doc: Callable[..., Document]):
    """Two documents: "log" holds the one chunk BM25 likes best (short, every query word),
    deep inside unrelated entries; "works" is about the query throughout, in longer chunks."""
    filler = [f"Routine log entry {i} about the weather and staffing." for i in range(6)]
    store.upsert(make_doc("log", *filler, "Dredging permit, harbour."))
    store.upsert(
        make_doc(
            "works",
            "We discussed the dredging of the harbour mouth and the permit it needs before "
            "the spring season starts.",
            "The permit for dredging the harbour is still pending with the council, which "
            "wants the survey first.",
            "Harbour dredging costs depend on the permit conditions and on the weather.",
        )
    )
    return store


def test_a_document_about_the_question_outranks_the_best_single_chunk(harbour) -> None:
    assert plain_bm25(harbour, QUERY)[0] == "log:6"
    found = ids(harbour.search(QUERY, 4, Deadline(5)))
    # Its two best chunks, its BM25 as a whole and its opening chunks lift "works".
    assert set(found[:3]) == {"works:0", "works:1", "works:2"} and found[3] == "log:6"


def test_scores_add_the_document_score_to_the_chunks_own() -> None:
    hits = [
        sqlite_rank.Hit(1, "a", seq=1, lexical=4.0),
        sqlite_rank.Hit(2, "a", seq=5, lexical=2.0),
        sqlite_rank.Hit(3, "b", seq=7, lexical=5.0),
    ]
    scores = sqlite_rank.lexical_scores(hits, {"a": 3.0, "b": 6.0})
    # T2: a 6 -> 1.0, b 5 -> 0.833; DB: a 0.5, b 1.0; OPEN (seq 0-1): a 4 -> 1.0, b 0.
    assert scores[1] == pytest.approx(4 / 5 + 1.0 + 0.2 * 0.5 + 0.2)
    assert scores[2] == pytest.approx(2 / 5 + 1.0 + 0.2 * 0.5 + 0.2)
    assert scores[3] == pytest.approx(5 / 5 + 5 / 6 + 0.2 * 1.0)


def test_hybrid_scores_add_cosines_and_the_document_vector() -> None:
    hits = [
        sqlite_rank.Hit(1, "a", seq=0, lexical=4.0, cosine=0.5),
        sqlite_rank.Hit(2, "a", seq=3, cosine=0.8),  # a nearest chunk BM25 did not return
        sqlite_rank.Hit(3, "b", seq=1, lexical=2.0, cosine=-0.2),
    ]
    scores = sqlite_rank.hybrid_scores(hits, {"a": 1.0, "b": 4.0}, {"a": 0.6})
    # Own: 4/4 + 2 x 0.5 = 2, 0 + 2 x 0.8 = 1.6, 2/4 + 0 = 0.5. Document: best own scaled
    # (a 1, b 0.25) x 0.75 + DB scaled (a 0.25, b 1) x 0.2 + document cosine (b none) x 0.5.
    a, b = 0.75 + 0.2 * 0.25 + 0.5 * 0.6, 0.75 * 0.25 + 0.2
    assert scores == pytest.approx({1: 2.0 + a, 2: 1.6 + a, 3: 0.5 + b})


class NearLeg:
    """The vector leg's answers for one question: its nearest chunks, and 0.3 for others."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def nearest(self, conn, vector, limit: int, collections=None) -> list[tuple[int, float]]:
        return [(10, 0.9), (2, 0.7)]

    def cosines(self, conn, vector, pks) -> dict[int, float]:
        self.asked.append(list(pks))
        return dict.fromkeys(pks, 0.3)


def test_hybrid_candidates_are_both_legs_each_with_its_cosine() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE chunks (pk INTEGER PRIMARY KEY, doc_id TEXT, seq INTEGER)")
    rows = [(1, "a", 0), (2, "a", 1), (10, "b", 4)]
    conn.executemany("INSERT INTO chunks VALUES (?, ?, ?)", rows)
    leg = NearLeg()
    lexical = [sqlite_rank.Hit(1, "a", 0, lexical=3.0), sqlite_rank.Hit(2, "a", 1, lexical=2.0)]
    joined = sqlite_search._with_cosines(conn, leg, None, lexical)
    assert {h.pk: (h.doc_id, h.seq, h.lexical, h.cosine) for h in joined} == {
        1: ("a", 0, 3.0, 0.3),  # a BM25 hit beyond the nearest: its cosine read for it
        2: ("a", 1, 2.0, 0.7),
        10: ("b", 4, 0.0, 0.9),  # a nearest chunk BM25 did not return
    }
    assert leg.asked == [[1]]


def test_coverage_counts_a_word_found_nowhere_at_full_weight() -> None:
    weights = [1.0, 2.0, 3.0]
    # A word found nowhere still counts in the total: at most half is held here.
    assert relevance.coverage(weights, [["a"], ["a", "b"], []]) == pytest.approx(0.5)
    assert relevance.coverage(weights, [["a"], ["b"], ["b"]]) == pytest.approx(5 / 6)
    assert relevance.coverage([], []) == 0.0


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SqliteKnowledgeStore]:
    """The sample knowledge, with the relevance floor on."""
    with SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"), relevance_floor=True) as store:
        ingest_paths(store, [str(SAMPLE)], progress=False)
        yield store


def test_full_text_finds_nothing_for_a_question_the_knowledge_does_not_cover(sample) -> None:
    assert sample.search(OFFTOPIC, 5, Deadline(5)) == []
    found = sample.search(COVERED, 5, Deadline(5))
    assert "resources, not politics" in found[0].text


def test_hybrid_finds_nothing_for_a_question_the_knowledge_does_not_cover(
    tmp_path: Path, mistral: MistralStub
) -> None:
    embedder = MistralEmbedder(KEY, server_url=mistral.url)
    path = str(tmp_path / "k.sqlite3")
    with SqliteKnowledgeStore(path, embedder=embedder, relevance_floor=True) as store:
        ingest_paths(store, [str(SAMPLE)], progress=False)
        mistral.reset()
        # No word of it is in the knowledge: no cosine could lift it, so it is not embedded.
        assert store.search(NOWHERE, 5, Deadline(5)) == []
        assert [r for r in mistral.requests if r.path == "/v1/embeddings"] == []
        assert store.search(OFFTOPIC, 5, Deadline(5)) == []
        found = store.search(COVERED, 5, Deadline(5))
        assert "resources, not politics" in found[0].text
        questions = [r.json for r in mistral.requests if r.path == "/v1/embeddings"]
        assert [q.get("input") or q.get("inputs") for q in questions] == [[OFFTOPIC], [COVERED]]


def test_the_document_index_follows_replacements_and_removals(
    harbour: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    harbour.upsert(make_doc("works", "Lighthouse repainting schedule.", sha="sha-2"))
    with sqlite3.connect(harbour.path) as conn:
        conn.execute("INSERT INTO doc_fts (doc_fts) VALUES ('integrity-check')")
        holders = "SELECT count(*) FROM doc_fts WHERE doc_fts MATCH ?"
        assert conn.execute(holders, ("dredging",)).fetchone()[0] == 1  # only "log" now
        assert conn.execute(holders, ("lighthouse",)).fetchone()[0] == 1
    assert ids(harbour.search("lighthouse repainting", 3, Deadline(5))) == ["works:0"]
    harbour.remove(["log"])
    assert harbour.search(QUERY, 3, Deadline(5)) == []
    with sqlite3.connect(harbour.path) as conn:
        conn.execute("INSERT INTO doc_fts (doc_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT count(*) FROM doc_fts_docsize").fetchone()[0] == 1


def test_a_store_made_before_the_document_index_gets_one_when_opened(harbour) -> None:
    with sqlite3.connect(harbour.path) as conn:  # as the store was before this change
        conn.execute("DROP TABLE doc_fts")
        conn.execute("DELETE FROM meta WHERE key = 'doc_fts'")
    version = harbour.version()
    with SqliteKnowledgeStore(harbour.path) as reopened:
        assert reopened.version() != version  # rankings changed: cached answers are stale
        assert reopened.search(QUERY, 1, Deadline(5))[0].document_id == "works"
    with SqliteKnowledgeStore(harbour.path) as again:
        assert again.version() == harbour.version()  # filled once


def document_vectors(store: SqliteKnowledgeStore) -> dict[str, str]:
    with sqlite3.connect(store.path) as conn:
        return dict(conn.execute("SELECT doc_id, model FROM document_vectors").fetchall())


def test_document_vectors_are_made_with_the_chunks_and_by_a_rebuild(
    tmp_path: Path, mistral: MistralStub, make_doc: Callable[..., Document]
) -> None:
    embedder = MistralEmbedder(KEY, server_url=mistral.url)
    with SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"), embedder=embedder) as store:
        store.upsert(make_doc("a", "Dredging permit.", "Harbour survey."))
        store.upsert(make_doc("b", "Lighthouse repainting."))
        assert document_vectors(store) == {"a": "mistral-embed/1024", "b": "mistral-embed/1024"}
        with SqliteKnowledgeStore(store.path) as lexical:  # a process without a key
            lexical.upsert(make_doc("a", "Dredging permit only.", sha="sha-2"))
            lexical.remove(["b"])
        assert document_vectors(store) == {}  # stale ones are gone with their chunks
        rebuilt = store.vectors.rebuild()
        assert (rebuilt.embedded, rebuilt.reused) == (1, 0)
        assert document_vectors(store) == {"a": "mistral-embed/1024"}
        with sqlite3.connect(store.path) as conn:  # a store made before document vectors
            conn.execute("DELETE FROM document_vectors")
        assert store.vectors.rebuild().embedded == 0
        assert document_vectors(store) == {"a": "mistral-embed/1024"}
