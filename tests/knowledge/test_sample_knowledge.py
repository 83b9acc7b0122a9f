"""The bundled sample knowledge answers the questions the README and demos use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.knowledge.formats import parse_file
from bot.knowledge.formats.base import document_id
from bot.knowledge.ingest import discover, ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from tests.support import SAMPLE

UNEA = "2026-03-04-unea-preparation-meeting.md"
COUNTRIES = "2026-02-18-country-prioritisation-meeting.md"
UK = "uk-engagement-timeline.md"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteKnowledgeStore]:
    path = tmp_path_factory.mktemp("sample") / "knowledge.sqlite3"
    store = SqliteKnowledgeStore(str(path))
    summary = ingest_paths(store, [str(SAMPLE)], progress=False)
    assert summary.errors == [] and summary.documents_added >= 4
    yield store
    store.close()


def doc_id(name: str) -> str:
    return document_id(f"{SAMPLE.name}/{name}")


def test_every_sample_file_is_a_dated_document_of_reasonable_size() -> None:
    files, errors, ignored = discover([str(SAMPLE)])
    assert errors == [] and ignored == {} and 4 <= len(files) <= 6
    for source in files:
        data = source.path.read_bytes()
        assert 1500 <= len(data) <= 5000, source.key
        doc = parse_file(source.path, data)
        assert doc.date and doc.title, source.key


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("who attended the UNEA meeting?", UNEA),
        ("what did we decide about Germany?", COUNTRIES),
        # A follow-up is searched together with the question it follows.
        ("what did we decide about Germany? why was that decided?", COUNTRIES),
        ("what did we decide about the UK timeline?", UK),
    ],
)
def test_questions_find_the_right_document_first(
    sample_store: SqliteKnowledgeStore, question: str, expected: str
) -> None:
    results = sample_store.search(question, 5, Deadline(5))
    assert results[0].document_id == doc_id(expected), [p.source for p in results]


def test_the_attendee_question_returns_the_attendee_list(
    sample_store: SqliteKnowledgeStore,
) -> None:
    path = SAMPLE / UNEA
    attendees = parse_file(path, path.read_bytes()).people
    assert len(attendees) >= 3
    top = sample_store.search("who attended the UNEA meeting?", 5, Deadline(5))[0]
    assert all(name in top.text for name in attendees)


def test_the_germany_answer_carries_its_reasons(sample_store: SqliteKnowledgeStore) -> None:
    question = "what did we decide about Germany? why was that decided?"
    top = sample_store.search(question, 5, Deadline(5))[0]
    assert "Germany" in top.text
    assert any(word in top.text for word in ("capacity", "staff", "funding"))


def test_sample_people_are_counted(sample_store: SqliteKnowledgeStore) -> None:
    assert sample_store.counts()["people"] >= 4


def test_sample_folder_is_where_the_tests_expect_it() -> None:
    assert isinstance(SAMPLE, Path) and SAMPLE.is_dir()
