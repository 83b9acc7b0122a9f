"""Collections on the Neo4j dialect, through the recording stand-in of tests/fakes/graph_client.py
(no Neo4j server can be installed here): a limited search filters every statement before
its LIMIT and asks Lucene for no limit of its own, an unlimited one sends no filter, and
ingest keeps a document's collection unless told (test_graph_collections.py runs the same
store against a real FalkorDB)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.deadline import Deadline
from bot.knowledge.store import Chunk, Document
from tests.fakes import graph_client as neo4j


def limited_reads(client: neo4j.RecordingClient) -> list[tuple[str, dict]]:
    return [(q, p) for mode, q, p in client.sent if mode == "read" and "SHOW INDEXES" not in q]


def test_a_limited_neo4j_search_filters_every_statement_before_its_limit() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT, neo4j.vector_index(), *neo4j.LOOKUPS])
    client.answers["sum(d.text_chunks) AS chunks"] = [
        {"stem": "budget", "documents": 3, "chunks": 9, "words": 90.0}
        | {"in_chunks": 2, "in_documents": 1}
    ]
    client.answers["collect([d.id, score])"] = [{"covered": 1.0, "best": 1.0, "scores": []}]
    client.answers["RETURN n AS node"] = []
    client.answers["SPOKE_IN"] = [{"name": "Ann"}]
    client.answers["db.index.fulltext.queryNodes"] = [{**neo4j.HIT, "node": "4:x:1", "seq": 0}]
    store = neo4j.store_on(client, embedder=neo4j.Embedder(4))
    found = store.search("who attended the budget?", 3, Deadline(5), frozenset({"hr", "board"}))
    assert found[0].text.startswith("People in Budget") and found[1].chunk_id == "d1:0"
    reads = limited_reads(client)
    for kind in ("fulltext", "vector", "HAS_TERM", "RETURN n AS node", "SPOKE_IN", "found"):
        assert any(kind in q for q, _ in reads), kind  # each was read, and filtered:
    for query, params in reads:
        assert "IN $collections" in query and params["collections"] == ["board", "hr"], query
    fulltext = next(q for q, _ in reads if "fulltext.queryNodes" in q)
    # Lucene's own limit would cut before the filter: none, and the filter before ORDER BY.
    assert "{limit:" not in fulltext
    assert fulltext.index("IN $collections") < fulltext.index("ORDER BY") < fulltext.index("LIMIT")
    # The vector leg came back short: it asked for more neighbours, up to the cap.
    asked = [q.split(", ")[1] for q, _ in reads if "vector.queryNodes" in q]
    assert asked == ["100", "400", "1600", "4000"]


def test_an_unlimited_neo4j_search_sends_no_filter_and_one_vector_query() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT, neo4j.vector_index(), *neo4j.LOOKUPS])
    client.answers["db.index.vector.queryNodes"] = [{**neo4j.HIT, "chunk_id": "d1:1"}]
    store = neo4j.store_on(client, embedder=neo4j.Embedder(4))
    assert store.search("budget", 3, Deadline(5))
    reads = limited_reads(client)
    assert not [q for q, p in reads if "collection" in q or "collections" in p]
    fulltext = next(q for q, _ in reads if "fulltext.queryNodes" in q)
    assert fulltext.startswith(
        "CALL db.index.fulltext.queryNodes($index, $q, {limit: 100}) YIELD node, score "
        "WITH node AS c, score ORDER BY score DESC, c.id LIMIT 100 "
    )
    assert len([q for q, _ in reads if "vector.queryNodes" in q]) == 1


def test_an_empty_set_of_collections_reads_nothing() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT])
    assert neo4j.store_on(client).search("budget", 3, Deadline(5), frozenset()) == []
    assert client.sent == []


def test_a_neo4j_custom_query_gets_collections_as_a_parameter() -> None:
    client = neo4j.RecordingClient(indexes=[neo4j.FULLTEXT])
    query = (
        "MATCH (c:Chunk) WHERE c.collection IN $collections "
        "RETURN c.text AS text, 's' AS source, 1 AS score"
    )
    client.answers["MATCH (c:Chunk) WHERE"] = [{"text": "t", "source": "s", "score": 1.0}]
    store = neo4j.store_on(client, retrieval_query=query)
    assert store.search("budget", 3, Deadline(5), frozenset({"general"}))
    assert client.sent[-1][2]["collections"] == ["general"]
    store.search("budget", 3, Deadline(5))
    assert "collections" not in client.sent[-1][2]


def test_a_neo4j_document_keeps_its_collection_unless_told() -> None:
    client = neo4j.RecordingClient()
    store = neo4j.store_on(client)
    doc = Document("d1", "Plan", "text", "d1.txt", "", "s1", (Chunk(0, "Budget."),))
    store.upsert(doc)
    store.upsert(replace(doc, collection="board"))
    merges = [(q, p) for _, q, p in client.sent if q.startswith("MERGE (d:`Document`")]
    assert "CASE WHEN $collection = '' THEN coalesce(d.collection, 'general')" in merges[0][0]
    assert [p["collection"] for _, p in merges] == ["", "board"]
    created = next(q for _, q, _ in client.sent if "RETURN row.seq AS seq" in q)
    assert "c.collection = d.collection" in created
    with pytest.raises(ValueError):
        store.upsert(replace(doc, collection="../etc"))
