"""The graph store against a real FalkorDB over Bolt, through the real neo4j driver."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.formats import find_format, formats, parse_file
from bot.knowledge.graph import write as graph_write
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.schema import GraphSchema
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.knowledge.store import Chunk, Document
from tests.fakes.mistral_server import MistralStub, embed
from tests.services.falkordb import FalkorDBServer
from tests.support import FIXTURES, HOSTILE_GRAPH_QUESTIONS, SAMPLE

ZOOM_CALL = FIXTURES / "vtt" / "2026-03-10_zoom-budget-call.vtt"
KEY = "sk-graph-test-0123456789"


def open_store(server: FalkorDBServer, **options) -> GraphKnowledgeStore:
    return GraphKnowledgeStore(GraphClient(server.bolt_url, "falkordb", ""), **options)


@pytest.fixture(scope="module")
def shared(falkordb_session: FalkorDBServer) -> Iterator[GraphKnowledgeStore]:
    # One driver for the module: FalkorDB stalls the first connection after a closed one.
    store = open_store(falkordb_session)  # dialect "auto": detected on first use
    yield store
    store.close()


@pytest.fixture
def graph(shared: GraphKnowledgeStore, falkordb: FalkorDBServer) -> GraphKnowledgeStore:
    """The module's store on an empty graph."""
    return shared


@pytest.fixture
def corpus(tmp_path: Path, office_files: dict[str, bytes]) -> Path:
    """One file of every format the registry knows."""
    root = tmp_path / "corpus"
    shutil.copytree(SAMPLE, root)
    for name in ("board-minutes-march.pdf", "strategy-review.docx"):
        (root / name).write_bytes(office_files[name])
    shutil.copytree(FIXTURES / "vtt", root / "vtt")
    shutil.copytree(FIXTURES / "whatsapp", root / "whatsapp")
    turns = [{"speaker": "PhD A", "content": "The corpus is ready ."}] * 2
    (root / "Bed099.json").write_text(json.dumps({"meeting_transcripts": turns}))
    (root / "plain-note.txt").write_text("A plain note about the audit in March.\n")
    found = {find_format(p, p.read_bytes()).name for p in root.rglob("*") if p.is_file()}
    assert found == {f.name for f in formats()}
    return root


def search(store: GraphKnowledgeStore, question: str, k: int = 5):
    return store.search(question, k, Deadline(5))


def test_ingest_every_format_then_reingest_without_duplicates(graph, corpus, tmp_path) -> None:
    first = ingest_paths(graph, [str(corpus)], progress=False)
    assert first.errors == [] and first.documents_added == len(list(corpus.rglob("*.*")))
    assert graph.backend == "falkordb"
    with SqliteKnowledgeStore(str(tmp_path / "reference.sqlite3")) as reference:
        ingest_paths(reference, [str(corpus)], progress=False)
        expected = reference.counts()
    assert graph.counts() == expected
    version = graph.version()

    again = ingest_paths(graph, [str(corpus)], progress=False)
    assert (again.documents_added, again.documents_updated) == (0, 0)
    assert graph.counts() == expected and graph.version() == version

    (corpus / "plain-note.txt").write_text("A plain note: the audit moved to June.\n")
    changed = ingest_paths(graph, [str(corpus)], progress=False)
    assert (changed.documents_updated, changed.documents_skipped) == (1, first.documents_added - 1)
    assert graph.counts() == expected and graph.version() != version
    texts = [p.text for p in search(graph, "audit")]
    assert any("moved to June" in t for t in texts)
    assert not any("audit in March" in t for t in texts)  # the old version is gone


def test_pdf_and_word_passages_name_their_page_and_heading(graph, office_folder) -> None:
    folder = office_folder("docs", "board-minutes-march.pdf", "strategy-review.docx")
    assert ingest_paths(graph, [str(folder)], progress=False).errors == []
    top = search(graph, "budget for the Nairobi office")[0]
    assert top.source == "Board minutes March, p. 2" and "40,000 euros" in top.text
    assert search(graph, "Mombasa cooperative agreement")[0].source == "Strategy review, Partners"


def test_fulltext_passages_name_their_source(graph) -> None:
    ingest_paths(graph, [str(SAMPLE)], progress=False)
    top = search(graph, "why was Germany deprioritised?")[0]
    assert "Germany" in top.text
    assert top.source == "Country prioritisation meeting: 2026 focus countries (2026-02-18)"
    assert (top.title, top.date) == (
        "Country prioritisation meeting: 2026 focus countries",
        "2026-02-18",
    )
    assert top.document_id and top.chunk_id.startswith(top.document_id)
    results = search(graph, "budget chemicals Germany meeting notes", k=3)
    assert len(results) == 3 and [p.score for p in results] == sorted(
        (p.score for p in results), reverse=True
    )
    assert search(graph, "Germany", k=0) == []


def test_who_spoke_in_a_meeting_comes_from_the_graph(graph) -> None:
    ingest_paths(graph, [str(SAMPLE), str(ZOOM_CALL)], progress=False)
    speakers = parse_file(ZOOM_CALL, ZOOM_CALL.read_bytes()).people
    first = search(graph, "Who spoke in the Zoom budget call?")[0]
    assert first.title == "Zoom budget call" and first.speakers == speakers
    assert first.text.startswith("People in Zoom budget call (2026-03-10): ")
    assert all(name in first.text for name in speakers)
    unea = search(graph, "who attended the UNEA meeting?")[0]
    assert unea.title.startswith("UNEA-8") and "Amara Okafor" in unea.text


@pytest.mark.parametrize("question", HOSTILE_GRAPH_QUESTIONS, ids=lambda q: repr(q[:12]))
def test_hostile_questions_never_raise_nor_harm_the_server(graph, question) -> None:
    graph.upsert(doc("d1", "The budget (draft) is 12,000 euros: Amara's call."))
    assert isinstance(search(graph, question), list)
    assert [p.document_id for p in search(graph, "budget")] == ["d1"]  # still alive, intact


def doc(doc_id: str, *texts: str, people: tuple[str, ...] = (), sha: str = "s1") -> Document:
    chunks = tuple(Chunk(seq=i, text=t) for i, t in enumerate(texts))
    return Document(doc_id, f"Title {doc_id}", "text", f"{doc_id}.txt", "", sha, chunks, people)


def people_in(graph: GraphKnowledgeStore) -> list[str]:
    query = "MATCH (p:Person) RETURN p.name AS name ORDER BY name"
    return graph.client.read(lambda tx: [r["name"] for r in tx.run(query)], Deadline(5))


def test_documents_and_remove(graph, tmp_path) -> None:
    ingest_paths(graph, [str(SAMPLE)], progress=False)
    own = doc("own", "The zebra fund audit.", people=("Amara Okafor", "Lena Berg"))
    graph.upsert(own)
    # An existing graph may link a Person to other things than documents: that one stays.
    link = "MATCH (p:Person {name: 'Priya Raman'}) CREATE (p)-[:MEMBER_OF]->(:Team {name: 'A'})"
    graph.client.write(lambda tx: tx.run(link).consume(), Deadline(5))
    listed = graph.documents()
    with SqliteKnowledgeStore(str(tmp_path / "reference.sqlite3")) as reference:
        ingest_paths(reference, [str(SAMPLE)], progress=False)
        reference.upsert(own)
        expected = reference.documents()

    def fields(d):
        return (d.id, d.title, d.source, d.kind, d.date, d.chunks)

    assert [fields(d) for d in listed] == [fields(d) for d in expected]
    assert all(abs(d.ingested_at - time.time()) < 60 for d in listed)

    version = graph.version()
    sample = [d.id for d in listed if d.source.startswith("sample/")]
    assert graph.remove([*sample, sample[0], "missing"]) == len(sample) == 5
    assert graph.version() != version
    assert [d.id for d in graph.documents()] == ["own"]
    assert graph.counts() == {"documents": 1, "chunks": 1, "people": 2}
    assert {p.document_id for p in search(graph, "zebra fund audit")} == {"own"}
    assert search(graph, "UNEA Germany budget meeting") == []  # covered by nothing left
    # Speakers of the removed meetings go, unless still linked: by SPOKE_IN or otherwise.
    assert people_in(graph) == ["Amara Okafor", "Lena Berg", "Priya Raman"]
    assert graph.remove(["own"]) == 1 and graph.remove(["own"]) == 0
    assert graph.counts() == {"documents": 0, "chunks": 0, "people": 0}
    assert people_in(graph) == ["Priya Raman"]  # never DETACH DELETEd


def test_an_interrupted_removal_is_already_a_new_version(graph, monkeypatch) -> None:
    graph.upsert(doc("d1", "The zebra fund audit."))
    version = graph.version()
    real_run = graph_write.run

    def failing(tx, dialect, query, params=None):
        if "DELETE" in query:
            raise KnowledgeUnavailable("connection lost")
        return real_run(tx, dialect, query, params)

    monkeypatch.setattr(graph_write, "run", failing)
    with pytest.raises(KnowledgeUnavailable):
        graph.remove(["d1"])
    monkeypatch.undo()
    # FalkorDB keeps what ran before the failure: the mark, so no cached answer survives
    # and an ingest rewrites the document; removing it again finishes the job.
    assert graph.version() != version and graph.document_sha("d1") == ""
    assert graph.remove(["d1"]) == 1 and graph.documents() == []


def test_any_text_is_stored_exactly(graph) -> None:
    tricky = "It's a \\path\\ with 'quotes', \"doubles\", `ticks`, {braces} and $dollars\n"
    # ~4,000 bytes: more than one FalkorDB statement can carry, so it is sent in pieces.
    long = "Zoë's café — 会议记录：预算草案。\n" * 110
    graph.upsert(doc("q1", tricky + "marker one", long, people=("O'Brien", "Zoë \\ Test")))
    assert [p.text for p in search(graph, "marker")] == [tricky + "marker one"]
    assert [p.text for p in search(graph, "café")] == [long]
    assert graph.counts() == {"documents": 1, "chunks": 2, "people": 2}


def test_a_custom_retrieval_query_from_config(graph, falkordb) -> None:
    custom = open_store(
        falkordb,
        dialect="falkordb",
        retrieval_query=(
            "CALL db.idx.fulltext.queryNodes('Chunk', $query) YIELD node, score "
            "MATCH (d:Document)-[:HAS_CHUNK]->(node) "
            "RETURN node.text AS text, 'custom: ' + d.title AS source, score, d.id AS document_id "
            "ORDER BY score DESC LIMIT $k"
        ),
    )
    try:
        ingest_paths(graph, [str(SAMPLE)], progress=False)
        results = custom.search("Germany deprioritised", 3, Deadline(5))
        assert results and all(p.source.startswith("custom: ") for p in results)
        assert "Germany" in results[0].text
        assert isinstance(custom.search("it's ' OR 1=1 //", 3, Deadline(5)), list)
    finally:
        custom.close()


def test_another_schema_by_configuration(falkordb) -> None:
    schema = GraphSchema(chunk_label="Passage", document_label="Source", text_property="body")
    store = open_store(falkordb, dialect="falkordb", schema=schema)
    try:
        store.upsert(doc("s1", "The audit starts in March."))
        assert [p.text for p in store.search("audit", 3, Deadline(5))] == [
            "The audit starts in March."
        ]
        assert b":1\r\n" in falkordb.redis(
            "GRAPH.QUERY", "falkordb", "MATCH (p:Passage) RETURN count(p)"
        )
        assert store.counts() == {"documents": 1, "chunks": 1, "people": 0}
    finally:
        store.close()


@pytest.fixture
def mistral() -> Iterator[MistralStub]:
    with MistralStub() as stub:
        yield stub


def synonym_of(word: str) -> str:
    """A made-up word the stand-in embeds exactly like `word` (same hashed feature): only
    the vector leg can see that the two mean the same."""
    return next(w for w in (f"zq{i}" for i in itertools.count()) if embed(w) == embed(word))


def test_vector_and_hybrid_search_with_embeddings(falkordb, mistral, caplog, monkeypatch) -> None:
    embedder = MistralEmbedder(KEY, server_url=mistral.url)
    store = open_store(falkordb, dialect="falkordb", embedder=embedder)
    try:
        store.upsert(doc("lex", "Quarterly budget review for the travel line."))
        store.upsert(doc("sem", "Reimbursement rules.", "The falcon project timeline."))
        embedded = [r.json for r in mistral.requests if r.path == "/v1/embeddings"]
        assert sum(len(b.get("input") or b.get("inputs")) for b in embedded) == 3
        mistral.reset()

        only_vector = store.search(synonym_of("falcon"), 3, Deadline(5))
        assert only_vector[0].chunk_id == "sem:1"  # no shared word: the vector leg found it
        asked = [r.json for r in mistral.requests if r.path == "/v1/embeddings"]
        assert len(asked) == 1

        hybrid = store.search("falcon timeline budget", 3, Deadline(5))
        assert {p.chunk_id for p in hybrid[:2]} == {"sem:1", "lex:0"}

        mistral.statuses = [500] * 8  # the embeddings API fails: full-text still answers
        with caplog.at_level(logging.WARNING):
            assert store.search("travel budget", 3, Deadline(3))[0].chunk_id == "lex:0"
        assert "full-text only" in caplog.text
    finally:
        store.close()


def test_no_embedding_call_while_no_chunk_carries_a_vector(graph, falkordb, mistral) -> None:
    graph.upsert(doc("d1", "The budget line."))  # ingested without an embedder
    embedder = MistralEmbedder(KEY, server_url=mistral.url)
    store = open_store(falkordb, dialect="falkordb", embedder=embedder)
    try:
        assert store.search("budget", 3, Deadline(5))[0].document_id == "d1"
        assert not [r for r in mistral.requests if r.path == "/v1/embeddings"]
    finally:
        store.close()


def test_people_names_most_documents_first_alike_in_both_stores(graph, tmp_path) -> None:
    ingest_paths(graph, [str(SAMPLE)], progress=False)
    with SqliteKnowledgeStore(str(tmp_path / "reference.sqlite3")) as reference:
        ingest_paths(reference, [str(SAMPLE)], progress=False)
        expected = reference.people(100, Deadline(5))
        assert reference.people(2, Deadline(5)) == expected[:2]
    assert graph.people(100, Deadline(5)) == expected
    assert graph.people(3, Deadline(5)) == expected[:3]
    # Jonas Weber is named in more of the sample's documents than anyone else.
    assert expected[0] == "Jonas Weber" and len(expected) == graph.counts()["people"]


def test_people_of_some_collections_only_alike_in_both_stores(graph, tmp_path) -> None:
    """Voice notes are transcribed with these names: a board member's name is no hint for
    someone who may not read the board's documents."""
    board = Document(
        id="pay",
        title="Pay review",
        kind="transcript",
        source="pay.vtt",
        date="",
        sha256="s-pay",
        chunks=(Chunk(seq=0, text="Zara Quist: the salaries rise.", speakers=("Zara Quist",)),),
        people=("Zara Quist",),
        collection="board",
    )
    with SqliteKnowledgeStore(str(tmp_path / "reference.sqlite3")) as reference:
        for store in (graph, reference):
            ingest_paths(store, [str(SAMPLE)], progress=False)
            store.upsert(board)
        for collections in (frozenset({"general"}), frozenset({"board"}), None):
            expected = reference.people(100, Deadline(5), collections)
            assert graph.people(100, Deadline(5), collections) == expected
        assert "Zara Quist" not in reference.people(100, Deadline(5), frozenset({"general"}))
        assert reference.people(100, Deadline(5), frozenset({"board"})) == ["Zara Quist"]
        assert "Zara Quist" in reference.people(100, Deadline(5))
