"""The document-level evidence on the Neo4j dialect, through the recording stand-in of
tests/fakes/graph_client.py: which statements ingest and a search send, with which parameters, and
what the store does with their answers (no Neo4j server can be installed here)."""

from __future__ import annotations

import math

import pytest

from bot.deadline import Deadline
from bot.knowledge.store import Chunk, Document
from tests.fakes import graph_client as neo4j


class Unnormalised(neo4j.Embedder):
    """Vectors of length 2, as a model that does not normalise gives them."""

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        return [[1.0] * self.dimensions for _ in texts]


TOTALS = "sum(d.text_chunks) AS chunks"  # prefixes the stand-in answers by
SCORES = "collect([d.id, score])"
COSINES = "RETURN n AS node"


def test_ingest_writes_terms_centroid_and_totals_as_parameters() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT, neo4j.vector_index(), *neo4j.LOOKUPS])
    store = neo4j.store_on(client, embedder=Unnormalised(4))
    chunks = (Chunk(0, "Budget review."), Chunk(1, "Budgets grow."))
    store.upsert(Document("d1", "Plan", "text", "d1.txt", "", "s1", chunks))
    sent = [(q, p) for mode, q, p in client.sent if mode == "write"]
    unlink = next(i for i, (q, _) in enumerate(sent) if "DELETE h" in q)
    link = next(i for i, (q, _) in enumerate(sent) if "MERGE (t:`SearchTerm`" in q)
    assert unlink < link and sent[unlink][0].startswith(
        "MATCH (:`Document` {id: $id})-[h:HAS_TERM]->(t:`SearchTerm`) DELETE h"
    )
    assert sent[link][1]["terms"] == [
        ["budget", 2, 2],
        ["grow", 1, 1],
        ["plan", 0, 2],
        ["review", 1, 1],
    ]
    query, params = next((q, p) for q, p in sent if "d.centroid = $vector" in q)
    assert "WHERE elementId(c) = $node" in query and params["node"] == "n0"
    assert params["vector"] == pytest.approx([0.5] * 4)  # the normalised sum of unit vectors
    finish = sent[-1]
    assert finish[0].endswith("d.text_chunks = $chunks, d.sha256 = $sha, d.updated_at = $now")
    assert (finish[1]["length"], finish[1]["chunks"]) == (4, 2)


def test_a_hybrid_search_reads_evidence_and_cosines_and_ranks_by_them() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT, neo4j.vector_index(), *neo4j.LOOKUPS])
    client.answers["db.index.fulltext.queryNodes"] = [{**neo4j.HIT, "node": "4:x:1", "seq": 0}]
    far = {**neo4j.HIT, "chunk_id": "d2:3", "document_id": "d2", "node": "4:x:2", "seq": 3}
    client.answers["db.index.vector.queryNodes"] = [far]
    client.answers[TOTALS] = [
        {"stem": "budget", "documents": 10, "chunks": 40, "words": 900.0}
        | {"in_chunks": 4, "in_documents": 2}
    ]
    client.answers[SCORES] = [{"covered": 2.0, "best": 3.0, "scores": [["d1", 3.0], ["d2", 1.5]]}]
    client.answers[COSINES] = [
        {"node": "4:x:1", "chunk": 0.1, "document": 0.1},
        {"node": "4:x:2", "chunk": 0.9, "document": 0.8},
    ]
    store = neo4j.store_on(client, embedder=Unnormalised(4))
    found = store.search("budget", 3, Deadline(5))
    assert [p.chunk_id for p in found] == ["d2:3", "d1:0"]  # by meaning and its document
    assert client.statements("write") == []
    totals = next(p for _, q, p in client.sent if TOTALS in q)
    assert totals == {"stems": ["budget"]}
    scores = next(p for _, q, p in client.sent if SCORES in q)
    idf = math.log((40 - 4 + 0.5) / 4.5)
    assert scores["cover"] == pytest.approx([idf])
    assert scores["weight"] == pytest.approx([math.log(8.5 / 2.5)])
    assert scores["average"] == pytest.approx(90.0)
    query, cosines = next((q, p) for _, q, p in client.sent if COSINES in q)
    assert "WHERE elementId(c) = n" in query and "reduce(" in query
    assert cosines == {"nodes": ["4:x:1", "4:x:2"], "q": pytest.approx([0.5] * 4)}


def test_a_question_the_statistics_do_not_cover_finds_nothing() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT, *neo4j.LOOKUPS])
    client.answers[TOTALS] = [
        {"stem": s, "documents": 10, "chunks": 40, "words": 900.0, "in_chunks": n}
        | {"in_documents": min(n, 1)}
        for s, n in (("budget", 4), ("peru", 0))
    ]
    client.answers[SCORES] = [{"covered": 2.0, "best": 3.0, "scores": [["d1", 3.0]]}]
    store = neo4j.store_on(client, relevance_floor=True)
    assert store.search("budget in Peru", 3, Deadline(5)) == []
    client.answers[SCORES] = [{"covered": 6.0, "best": 3.0, "scores": [["d1", 3.0]]}]
    assert [p.chunk_id for p in store.search("budget in Peru", 3, Deadline(5))] == ["d1:0"]
