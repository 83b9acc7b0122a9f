"""Document-level evidence in the graph store, against a real FalkorDB over Bolt: the
statistics ingest writes (right across a re-ingest and a removal), a document that wins by
them, and the coverage floor that finds nothing for a question the knowledge does not
cover. The ranking's arithmetic is pinned without a server at the end."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.knowledge import relevance
from bot.knowledge.graph import ranking
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.evidence import read_evidence, similarities
from bot.knowledge.graph.search import fulltext_hits
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.graph.write import centroid
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.store import Chunk, Document
from tests.fakes.mistral_server import MistralStub, embed
from tests.services.falkordb import FalkorDBServer
from tests.support import SAMPLE

KEY = "sk-graph-evidence-0123456789"


@pytest.fixture
def graph(falkordb: FalkorDBServer) -> Iterator[GraphKnowledgeStore]:
    """A store (dialect "auto") on an empty graph."""
    client = GraphClient(falkordb.bolt_url, "falkordb", "")
    with GraphKnowledgeStore(client, relevance_floor=True) as store:
        yield store


@pytest.fixture
def mistral() -> Iterator[MistralStub]:
    with MistralStub() as stub:
        yield stub


def doc(doc_id: str, *texts: str, title: str = "", sha: str = "s1") -> Document:
    chunks = tuple(Chunk(seq=i, text=t) for i, t in enumerate(texts))
    return Document(doc_id, title or f"Notes {doc_id}", "text", f"{doc_id}.txt", "", sha, chunks)


def read(store: GraphKnowledgeStore, cypher: str) -> list[dict]:
    return store.client.read(lambda tx: tx.run(cypher).data(), Deadline(5))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def statistics(store: GraphKnowledgeStore) -> tuple[list[dict], ...]:
    """Every HAS_TERM link, every document's totals, every SearchTerm."""
    return (
        read(
            store,
            "MATCH (d:Document)-[h:HAS_TERM]->(t:SearchTerm) RETURN d.id AS doc, t.stem AS stem, "
            "h.count AS count, h.chunks AS chunks ORDER BY doc, stem",
        ),
        read(
            store,
            "MATCH (d:Document) RETURN d.id AS doc, d.text_terms AS terms, "
            "d.text_chunks AS chunks ORDER BY doc",
        ),
        read(store, "MATCH (t:SearchTerm) RETURN t.stem AS stem ORDER BY stem"),
    )


def test_statistics_stay_right_across_a_reingest_and_a_removal(graph, falkordb) -> None:
    graph.upsert(doc("a", "The budget for the zebra project.", "Budgets grow.", title="Zebra plan"))
    graph.upsert(doc("b", "A falcon audit in March."))
    links, documents, _ = statistics(graph)
    # Occurrences in the chunk texts (no title, no stopwords); chunks holding it in text
    # or title (the title is on every chunk).
    assert [row for row in links if row["doc"] == "a"] == [
        {"doc": "a", "stem": "budget", "count": 2, "chunks": 2},
        {"doc": "a", "stem": "grow", "count": 1, "chunks": 1},
        {"doc": "a", "stem": "plan", "count": 0, "chunks": 2},
        {"doc": "a", "stem": "project", "count": 1, "chunks": 1},
        {"doc": "a", "stem": "zebra", "count": 1, "chunks": 2},
    ]
    assert documents[0] == {"doc": "a", "terms": 8, "chunks": 2}  # every word counts

    graph.upsert(doc("a", "The falcon budget grew.", title="Falcon", sha="s2"))
    assert graph.remove(["b"]) == 1
    after = statistics(graph)
    falkordb.clear()
    graph.upsert(doc("a", "The falcon budget grew.", title="Falcon", sha="s2"))
    assert after == statistics(graph)  # as if only the last version had ever been stored
    assert [row["stem"] for row in after[2]] == ["budget", "falcon", "grew"]  # none orphaned
    assert after[1] == [{"doc": "a", "terms": 4, "chunks": 1}]


def test_whole_document_bm25_and_coverage_come_from_the_statistics(graph) -> None:
    graph.upsert(doc("long", "Zebra notes.", "Zebra zebra crossing plans for the long road."))
    graph.upsert(doc("short", "Zebra rota."))
    for i in range(5):
        graph.upsert(doc(f"f{i}", f"Filler {i}."))
    dialect, question = graph.dialect(Deadline(5)), "zebra crossing in Peru?"
    evidence = graph.client.read(
        lambda tx: read_evidence(tx, graph.schema, dialect, question), Deadline(5)
    )
    # BM25 over whole documents (k1 1.2, b 0.75, FTS5's idf): of 7 documents, 2 hold
    # "zebra" and 1 "crossing"; lengths 10 and 2 words, 22 / 7 on average.
    zebra, crossing = math.log(5.5 / 2.5), math.log(6.5 / 1.5)

    def bm25(idf: float, tf: int, length: int) -> float:
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length * 7 / 22))

    long = bm25(zebra, 3, 10) + bm25(crossing, 1, 10)
    assert evidence.bm25 == pytest.approx({"long": 1.0, "short": bm25(zebra, 1, 2) / long})
    # Coverage by the best document, "long": of 8 chunks, 3 hold "zebra" and 1 "crossing";
    # "peru", found nowhere, weighs the most.
    covered = math.log(5.5 / 3.5) + math.log(7.5 / 1.5)
    assert evidence.coverage == pytest.approx(covered / (covered + math.log(8.5 / 0.5)))


def test_a_document_wins_by_its_evidence_over_the_best_single_chunk(graph) -> None:
    graph.upsert(
        doc(
            "survey",
            "Agenda: the kestrel survey on the north ridge, then the heron count.",
            "The kestrel survey found nine kestrel nests along the ridge path.",
            "Volunteers for the survey meet at the car park.",
            title="Ridge walk",
        )
    )
    graph.upsert(doc("aside", "Kestrel survey, briefly.", title="Garden log"))
    for i in range(3):
        graph.upsert(doc(f"f{i}", f"Filler note {i} about the budget and the rota."))
    dialect, question = graph.dialect(Deadline(5)), "kestrel survey"
    hits = graph.client.read(
        lambda tx: fulltext_hits(tx, graph.schema, dialect, question, 100), Deadline(5)
    )
    assert hits[0]["chunk_id"] == "aside:0"  # the best chunk by BM25 alone ...
    found = [p.chunk_id for p in graph.search(question, 3, Deadline(5))]
    assert found == ["survey:1", "survey:0", "aside:0"]  # ... but the meeting is the survey


def test_the_floor_finds_nothing_for_a_question_the_knowledge_does_not_cover(graph) -> None:
    ingest_paths(graph, [str(SAMPLE)], progress=False)
    assert graph.search("What is the capital of Peru?", 5, Deadline(5)) == []
    assert graph.search("Which recipe needs saffron and cardamom?", 5, Deadline(5)) == []
    assert "Germany" in graph.search("why was Germany deprioritised?", 5, Deadline(5))[0].text
    # A people question is judged by what it asks about, not by "who spoke" (nowhere).
    assert graph.search("who spoke in the UNEA meeting?", 5, Deadline(5))[0].text.startswith(
        "People in UNEA"
    )


def test_a_graph_without_statistics_is_searched_without_a_floor(graph) -> None:
    graph.upsert(doc("d1", "The zebra budget."))
    assert graph.search("zebra budget in Peru", 3, Deadline(5)) == []  # Peru: nowhere
    # As a graph ingested before the statistics existed, or by someone else.
    strip = "MATCH (d:Document) SET d.text_chunks = null"
    graph.client.write(lambda tx: tx.run(strip).consume(), Deadline(5))
    assert [p.chunk_id for p in graph.search("zebra budget in Peru", 3, Deadline(5))] == ["d1:0"]
    assert graph.document_sha("d1") == ""  # the next ingest writes it again, with them


def test_vectors_the_document_centroid_and_the_hybrid_floor(falkordb, mistral) -> None:
    embedder = MistralEmbedder(KEY, server_url=mistral.url)
    store = GraphKnowledgeStore(
        GraphClient(falkordb.bolt_url, "falkordb", ""),
        dialect="falkordb",
        embedder=embedder,
        relevance_floor=True,
    )
    try:
        texts = ("Quarterly budget review.", "The travel line grows.")
        store.upsert(doc("lex", *texts, title="Budget"))
        (row,) = read(store, "MATCH (d:Document {id: 'lex'}) RETURN d.centroid AS v")
        expected = centroid([embed(f"Budget\n{t}") for t in texts])
        assert row["v"] == pytest.approx(expected, abs=1e-6)
        # The cosines the hybrid ranking reads: the chunk's, and its document centroid's.
        (node,) = [r["n"] for r in read(store, "MATCH (c:Chunk {id: 'lex:0'}) RETURN id(c) AS n")]
        question = embed("budget travel review")
        cosines = store.client.read(
            lambda tx: similarities(tx, store.schema, store.dialect(Deadline(5)), [node], question),
            Deadline(5),
        )
        assert cosines[node] == pytest.approx(
            (dot(embed(f"Budget\n{texts[0]}"), question), dot(expected, question)), abs=1e-5
        )
        store.upsert(doc("sem", "The falcon project timeline."))
        assert store.search("budget travel review", 3, Deadline(5))[0].document_id == "lex"
        assert store.search("What is the capital of Peru?", 3, Deadline(5)) == []
        store.upsert(doc("lex", "Quarterly budget review.", sha="s2"))  # the centroid follows
        (row,) = read(store, "MATCH (d:Document {id: 'lex'}) RETURN d.centroid AS v")
        assert row["v"] == pytest.approx(embed("Notes lex\nQuarterly budget review."), abs=1e-6)
    finally:
        store.close()


# -- the arithmetic, without a server ---------------------------------------------------
def row(chunk: str, score: float, seq: int = 5) -> dict:
    return {"chunk_id": chunk, "document_id": chunk.split(":")[0], "score": score, "seq": seq}


def test_lexical_ranking_adds_each_documents_evidence() -> None:
    rows = [row("a:7", 1.0), row("b:0", 0.9, seq=0), row("b:9", 0.1), row("c:3", 0.95)]
    ranked = ranking.lexical(rows, {"b": 0.5, "c": 1.0})
    scores = {r["chunk_id"]: s for r, s in ranked}
    # b: two hits (T2 1.0 / 1.0), an opening hit (0.9 / 0.9) and half the best DB.
    assert scores["b:0"] == pytest.approx(0.9 + 1.0 + 0.2 * 0.5 + 0.2 * 1.0)
    assert scores["a:7"] == pytest.approx(1.0 + 1.0 * 1.0 / 1.0 + 0 + 0)
    assert scores["c:3"] == pytest.approx(0.95 + 0.95 + 0.2 * 1.0)
    assert [r["chunk_id"] for r, _ in ranked] == ["b:0", "c:3", "a:7", "b:9"]


def test_hybrid_ranking_adds_cosines_and_the_document_centroid() -> None:
    text = [row("a:0", 2.0), row("b:1", 1.0)]
    vector = [row("c:2", 0.0), row("b:1", 0.0)]
    cosines = {"a:0": (0.1, 0.2), "b:1": (0.5, 0.6), "c:2": (0.45, -0.3)}
    scores = {r["chunk_id"]: s for r, s in ranking.hybrid(text, vector, cosines, {"a": 1.0})}
    own = {"a:0": 1.0 + 0.2, "b:1": 0.5 + 1.0, "c:2": 0.9}
    assert scores["a:0"] == pytest.approx(own["a:0"] + 0.75 * 1.2 / 1.5 + 0.2 + 0.5 * 0.2)
    assert scores["b:1"] == pytest.approx(own["b:1"] + 0.75 + 0.5 * 0.6)
    assert scores["c:2"] == pytest.approx(own["c:2"] + 0.75 * 0.9 / 1.5 + 0.5 * -0.3)


@pytest.mark.parametrize(
    ("coverage", "cosine", "covered"),
    [(None, None, True), (0.676, None, True), (0.675, None, False), (None, 0.0, True)]
    + [(0.5, 0.507, True), (0.5, 0.506, False), (0.0, 0.9, False)],
)
def test_the_floors(coverage, cosine, covered) -> None:
    assert relevance.covered(coverage, cosine) is covered
