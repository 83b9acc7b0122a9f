"""The SQLite FTS5 store: ranking, safe queries, deadlines, replacement, threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge import open_knowledge_store, sqlite_search
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore, build_match_query
from bot.knowledge.store import Document
from bot.settings import Settings
from tests.fakes.clock import Clock
from tests.support import run_threads


@pytest.fixture
def filled(store: SqliteKnowledgeStore, make_doc: Callable[..., Document]):
    """A store holding three small documents on different topics."""
    store.upsert(
        make_doc(
            "unea",
            ("Attendees: Amara Okafor, Jonas Weber.\nAmara Okafor: welcome.", ("Amara Okafor",)),
            ("Jonas Weber: chemicals and waste resolution drafts.", ("Jonas Weber",)),
            title="UNEA preparation meeting",
            date="2026-03-04",
            people=("Amara Okafor", "Jonas Weber"),
            kind="transcript",
        )
    )
    store.upsert(
        make_doc(
            "countries",
            "Germany was deprioritised because of staff capacity and funding.",
            "Kenya and Brazil remain focus countries.",
            title="Country prioritisation",
            date="2026-02-18",
        )
    )
    store.upsert(make_doc("handbook", "How to write meeting notes.", title="Team handbook"))
    return store


def search(store: SqliteKnowledgeStore, query: str, k: int = 5):
    return store.search(query, k, Deadline(5))


def test_search_ranks_the_matching_document_first(filled: SqliteKnowledgeStore) -> None:
    assert search(filled, "why was Germany deprioritised?")[0].document_id == "countries"
    assert search(filled, "what about the chemicals resolution?")[0].chunk_id == "unea:1"


def test_title_words_match_every_chunk_of_a_document(filled: SqliteKnowledgeStore) -> None:
    # "UNEA" only appears in the title, yet the question finds that meeting's chunks.
    results = search(filled, "who attended the UNEA meeting?")
    assert results[0].document_id == "unea"
    assert "Amara Okafor" in results[0].text


def test_passages_carry_source_label_and_metadata(filled: SqliteKnowledgeStore) -> None:
    top = search(filled, "chemicals waste")[0]
    assert top.source == "UNEA preparation meeting (2026-03-04)"
    assert (top.title, top.date, top.document_id) == (
        "UNEA preparation meeting",
        "2026-03-04",
        "unea",
    )
    assert top.speakers == ("Jonas Weber",)
    assert search(filled, "meeting notes")[0].source == "Team handbook"  # no date, no brackets


def test_scores_are_positive_and_descending_and_k_is_respected(
    filled: SqliteKnowledgeStore,
) -> None:
    results = search(filled, "UNEA meeting notes Amara chemicals", k=3)
    assert len(results) == 3
    assert len(search(filled, "UNEA meeting notes Amara chemicals", k=2)) == 2
    assert all(p.score > 0 for p in results)
    assert [p.score for p in results] == sorted((p.score for p in results), reverse=True)
    assert search(filled, "Germany", k=0) == []


def test_upsert_replaces_chunks_and_bumps_the_version(
    filled: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    before = filled.version()
    filled.upsert(make_doc("countries", "Indonesia is on a watching brief.", sha="sha-2"))
    assert filled.version() != before
    assert filled.document_sha("countries") == "sha-2"
    assert search(filled, "Germany deprioritised") == []  # the old chunks are gone
    assert search(filled, "Indonesia")[0].document_id == "countries"
    assert filled.counts() == {"documents": 3, "chunks": 4, "people": 2}


def test_document_sha_of_an_unknown_document_is_none(store: SqliteKnowledgeStore) -> None:
    assert store.document_sha("nope") is None
    assert store.counts() == {"documents": 0, "chunks": 0, "people": 0}
    assert search(store, "anything") == []


HOSTILE = [
    '"unbalanced quote',
    'who said "chemicals and waste',
    "(((Germany",
    "Germany))",
    "plastic* waste*",
    "NEAR(chemicals waste, 3)",
    "AND OR NOT",
    "Germany AND",
    "title:UNEA",
    "{text title}: Germany",
    "^UNEA -Germany +Kenya",
    "what about 🌍🔥🇩🇪?",
    "ما هو القرار بشأن ألمانيا؟",
    "'; DROP TABLE chunks; --",
    "",
    "   \n\t ",
    "who are you?",
    "what did we do about it?",
    "\x00\x1b[31m",
    "x" * 20_000,
    " ".join(f"word{i}" for i in range(500)),
]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_questions_never_raise(filled: SqliteKnowledgeStore, question: str) -> None:
    results = search(filled, question)
    assert isinstance(results, list)
    assert filled.counts()["chunks"] == 5  # and nothing was dropped or changed


def test_query_builder_quotes_terms_and_drops_stopwords() -> None:
    # Words of six letters or more become stem prefixes; shorter ones stay exact.
    assert build_match_query("Who attended the UNEA meeting?") == (
        '"attended"* OR "unea" OR "meeting"*'
    )
    assert build_match_query('NEAR("a" AND b*) col:term') == '"near" OR "col" OR "term"'
    assert build_match_query("who are you?") == '"who" OR "are" OR "you"'  # all stopwords
    assert build_match_query("?!* 🙂") == ""


def test_query_builder_drops_request_words_unless_nothing_else_is_left() -> None:
    assert build_match_query("Summarise the discussion about the budget") == '"budget"*'
    assert build_match_query("What did Tom say about Kenya?") == '"tom" OR "kenya"'
    assert build_match_query("summarize the discussion") == '"summarize"* OR "discussion"*'


def test_an_expired_deadline_raises_knowledge_unavailable(filled: SqliteKnowledgeStore) -> None:
    with pytest.raises(KnowledgeUnavailable, match="timeout"):
        filled.search("Germany", 5, Deadline(0))


def test_a_deadline_expiring_mid_query_aborts_it(
    store: SqliteKnowledgeStore, make_doc: Callable[..., Document]
) -> None:
    texts = [f"Meeting {i} about plastics policy and chemicals." for i in range(400)]
    store.upsert(make_doc("big", *texts, title="Big"))
    deadline = Deadline(3, clock=Clock(0.0, step=1.0))  # each read is one "second" later
    with pytest.raises(KnowledgeUnavailable, match="timeout"):
        store.search("plastics chemicals meeting", 5, deadline)
    assert search(store, "plastics")  # the abort handler is gone afterwards


def test_concurrent_searches_from_eight_threads(filled: SqliteKnowledgeStore) -> None:
    expected = [p.chunk_id for p in search(filled, "Germany funding capacity")]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(25):
                results.append([p.chunk_id for p in search(filled, "Germany funding capacity")])
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    run_threads(worker, 8)
    assert errors == []
    assert len(results) == 200 and all(r == expected for r in results)


def test_two_stores_on_one_file_see_each_other(
    tmp_path: Path, make_doc: Callable[..., Document]
) -> None:
    path = str(tmp_path / "shared.sqlite3")
    with SqliteKnowledgeStore(path) as first, SqliteKnowledgeStore(path) as second:
        first.upsert(make_doc("a", "Kenya coastal plastics programme."))
        assert search(second, "Kenya")[0].document_id == "a"
        assert first.version() == second.version()


def test_closed_store_and_broken_files_raise_knowledge_unavailable(tmp_path: Path) -> None:
    store = SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"))
    store.ping()
    store.close()
    with pytest.raises(KnowledgeUnavailable):
        store.ping()
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(KnowledgeUnavailable):
        SqliteKnowledgeStore(str(tmp_path / "garbage.sqlite3"))
    with pytest.raises(KnowledgeUnavailable):
        SqliteKnowledgeStore(str(tmp_path))  # a directory


def test_open_knowledge_store_creates_the_data_dir(tmp_path: Path) -> None:
    store = open_knowledge_store(Settings(data_dir=str(tmp_path / "data" / "nested")))
    try:
        assert (tmp_path / "data" / "nested" / "knowledge.sqlite3").exists()
        assert store.backend == "sqlite"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # Porter keeps these apart (attend / attende, interview / interviewe, ...).
        ("who attended?", "attendees"),
        ("who was interviewed?", "interviewees"),
        ("who was trained?", "trainees"),
    ],
)
def test_long_words_also_find_their_derived_forms(
    store: SqliteKnowledgeStore, make_doc: Callable[..., Document], question: str, expected: str
) -> None:
    texts = {
        "attendees": "Attendees: Amara Okafor, Jonas Weber.",
        "interviewees": "Twelve interviewees joined this year.",
        "trainees": "The trainees met the coordinators.",
        "other": "Nothing relevant here at all.",
    }
    for doc_id, text in texts.items():
        store.upsert(make_doc(doc_id, text))
    assert expected in {p.document_id for p in search(store, question)}


def test_at_scale_only_rows_with_the_rarest_terms_are_ranked(
    store: SqliteKnowledgeStore,
    make_doc: Callable[..., Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 60 rows mention "plastics" (common), 3 also "Kenya" (rare), 1 only "Kenya".
    texts = [f"Plastics note {i} on packaging." for i in range(60)]
    texts[10] += " Kenya coastal plastics plastics pilot."
    texts[20] += " Kenya report."
    texts[30] += " Kenya and plastics again, plastics everywhere."
    store.upsert(make_doc("notes", *texts, "Kenya only, no other topic."))
    full = [p.chunk_id for p in search(store, "plastics in Kenya", k=10)]
    monkeypatch.setattr(sqlite_search, "CANDIDATE_ROWS", 5)
    gated = search(store, "plastics in Kenya", k=10)
    # Only the four Kenya rows are ranked, with the same bm25 scores as without the gate.
    assert [p.chunk_id for p in gated] == [c for c in full if c in {p.chunk_id for p in gated}]
    assert {p.chunk_id for p in gated} == {"notes:10", "notes:20", "notes:30", "notes:60"}
    assert all("Kenya" in p.text for p in gated)


def test_a_word_found_nowhere_does_not_gate_out_every_row(
    store: SqliteKnowledgeStore,
    make_doc: Callable[..., Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "quotation" is in no chunk; "plastics" is common. The gate must not be "quotation".
    store.upsert(make_doc("notes", *[f"Plastics note {i}." for i in range(20)]))
    monkeypatch.setattr(sqlite_search, "CANDIDATE_ROWS", 5)
    found = search(store, "plastics quotation", k=3)
    assert len(found) == 3 and all("Plastics" in p.text for p in found)
    assert search(store, "quotation", k=3) == []
