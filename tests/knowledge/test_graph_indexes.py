"""Indexes, people and the dialect against a real FalkorDB over Bolt (the real neo4j driver):
what ingest creates and the search path never does, a Person kept by its other links, a
vector index of the wrong length, tombstones in FalkorDB's vector index, and a refused
login that settles no dialect."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.dialect_falkordb import LIST_INDEXES
from bot.knowledge.graph.schema import GraphSchema
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.store import Chunk, Document
from tests.fakes.mistral_server import MistralStub
from tests.services.falkordb import GRAPH, FalkorDBServer, _command

KEY = "sk-graph-index-test-0123"


@pytest.fixture
def mistral() -> Iterator[MistralStub]:
    with MistralStub() as stub:
        yield stub


@pytest.fixture
def open_store(falkordb: FalkorDBServer, mistral: MistralStub):
    """Factory: a store on the test FalkorDB (closed after the test)."""
    stores: list[GraphKnowledgeStore] = []

    def build(embeddings: bool = False, password: str = "", **options) -> GraphKnowledgeStore:
        embedder = MistralEmbedder(KEY, server_url=mistral.url) if embeddings else None
        client = GraphClient(falkordb.bolt_url, "falkordb", password)
        stores.append(GraphKnowledgeStore(client, embedder=embedder, **options))
        return stores[-1]

    yield build
    for store in stores:
        store.close()


def doc(doc_id: str, *texts: str, people: tuple[str, ...] = (), sha: str = "s1") -> Document:
    chunks = tuple(Chunk(seq=i, text=t) for i, t in enumerate(texts))
    return Document(
        doc_id, f"Title {doc_id}", "transcript", f"{doc_id}.txt", "", sha, chunks, people
    )


def query(store: GraphKnowledgeStore, cypher: str) -> list[dict]:
    return store.client.read(lambda tx: tx.run(cypher).data(), Deadline(5))


def indexes(store: GraphKnowledgeStore, label: str = "Chunk") -> list[dict]:
    """The label's rows of `db.indexes()`, as the store lists them."""
    return [row for row in query(store, LIST_INDEXES) if row["label"] == label]


def test_a_person_keeps_other_relationships_across_a_reingest(open_store) -> None:
    store = open_store(dialect="falkordb")
    store.upsert(doc("call", "Budget talk.", people=("Ann", "Bo", "Cy")))
    link = "MATCH (p:Person {name: 'Ann'}) CREATE (p)-[:WORKS_AT]->(:Company {name: 'Acme'})"
    store.client.write(lambda tx: tx.run(link).consume(), Deadline(5))
    # A Person of the existing graph that no ingest ever linked: never looked at.
    store.client.write(lambda tx: tx.run("CREATE (:Person {name: 'Zed'})").consume(), Deadline(5))

    store.upsert(doc("call", "Budget talk, revised.", people=("Bo",), sha="s2"))
    names = "MATCH (p:Person) RETURN p.name AS name ORDER BY name"
    assert [r["name"] for r in query(store, names)] == ["Ann", "Bo", "Zed"]  # Cy is gone
    works = "MATCH (:Person {name: 'Ann'})-[:WORKS_AT]->(c:Company) RETURN c.name AS c"
    assert query(store, works) == [{"c": "Acme"}]
    spoke = "MATCH (p:Person)-[:SPOKE_IN]->(:Document {id: 'call'}) RETURN p.name AS name"
    assert query(store, spoke) == [{"name": "Bo"}]

    assert store.remove(["call"]) == 1
    assert [r["name"] for r in query(store, names)] == ["Ann", "Zed"]


def test_the_person_label_is_configurable(open_store) -> None:
    store = open_store(dialect="falkordb", schema=GraphSchema(person_label="Speaker"))
    store.client.write(lambda tx: tx.run("CREATE (:Person {name: 'Ann'})").consume(), Deadline(5))
    store.upsert(doc("call", "Hello.", people=("Ann",)))
    store.remove(["call"])
    assert query(store, "MATCH (p:Person) RETURN p.name AS name") == [{"name": "Ann"}]
    assert query(store, "MATCH (p:Speaker) RETURN count(p) AS n") == [{"n": 0}]


def test_searching_never_creates_an_index(open_store) -> None:
    schema = GraphSchema(chunk_label="ReadOnlyChunk", document_label="ReadOnlyDoc")
    reader = open_store(dialect="falkordb", schema=schema)
    with pytest.raises(KnowledgeUnavailable):  # no full-text index: nothing to search
        reader.search("budget", 3, Deadline(5))
    assert indexes(reader, "ReadOnlyChunk") == []
    open_store(dialect="falkordb", schema=schema).upsert(doc("d1", "The budget line."))
    reader.indexes.forget()  # as after a minute
    assert [p.document_id for p in reader.search("budget", 3, Deadline(5))] == ["d1"]


def test_a_vector_index_of_another_length_leaves_fulltext_answers(open_store, falkordb) -> None:
    other = (
        "CREATE VECTOR INDEX FOR (c:Chunk) ON (c.embedding) "
        "OPTIONS {dimension: 1536, similarityFunction: 'cosine'}"
    )
    assert not falkordb.redis("GRAPH.QUERY", GRAPH, other).startswith(b"-")
    store = open_store(embeddings=True, dialect="falkordb")
    store.upsert(doc("d1", "The travel budget.", "Falcon timeline."))
    assert [p.chunk_id for p in store.search("travel budget", 3, Deadline(5))] == ["d1:0"]
    lines = store.diagnose()
    assert ("ok", "graph full-text index Chunk: ONLINE") in lines
    assert [level for level, text in lines if "1536-dimension" in text] == ["error"]
    assert indexes(store)[0]["options"]["embedding"]["dimension"] == 1536  # left alone


def test_a_failing_vector_query_leaves_the_fulltext_hits(open_store, monkeypatch) -> None:
    store = open_store(embeddings=True, dialect="falkordb")
    store.upsert(doc("d1", "The travel budget.", "Falcon timeline."))
    dialect = store.dialect(Deadline(5))
    monkeypatch.setattr(  # the server rejects this call, as it would a wrong-length vector
        dialect, "vector_call", lambda *a: ("CALL db.idx.vector.noSuchProcedure()", {})
    )
    assert [p.chunk_id for p in store.search("travel budget", 3, Deadline(5))] == ["d1:0"]


@pytest.mark.parametrize("deleted", [2, 25])
def test_tombstones_never_hide_live_vectors(open_store, deleted: int) -> None:
    store = open_store(embeddings=True, dialect="falkordb")
    store.upsert(doc("old", *(f"Old note {i} about zebras." for i in range(deleted))))
    assert store.remove(["old"]) == 1  # FalkorDB 4.16 keeps their vectors as tombstones
    store.upsert(doc("new", "Alpha plan.", "Beta plan.", "Gamma plan."))
    # No word in common: only the vector leg answers, with every live chunk.
    found = store.search("qqqunrelated", 3, Deadline(5))
    assert sorted(p.chunk_id for p in found) == ["new:0", "new:1", "new:2"]


def test_ingest_rebuilds_a_vector_index_full_of_tombstones(open_store) -> None:
    store = open_store(embeddings=True, dialect="falkordb")
    store.upsert(doc("old", *(f"Old note {i} about zebras." for i in range(40))))
    store.upsert(doc("new", "Alpha plan.", "Beta plan.", "Gamma plan."))
    stale = indexes(store)[0]
    assert stale["added"] - stale["entries"] >= 40  # one per chunk, before any deletion
    assert store.remove(["old"]) == 1  # 40 more: over the rebuild floor
    until = time.monotonic() + 20
    while not all(r["status"] == "OPERATIONAL" for r in indexes(store)):
        assert time.monotonic() < until, "the rebuilt index never came online"
        time.sleep(0.1)
    (rebuilt,) = indexes(store)
    assert rebuilt["added"] == rebuilt["entries"] == 3  # built from the live nodes alone
    store.indexes.forget()
    found = store.search("qqqunrelated", 3, Deadline(5))
    assert sorted(p.chunk_id for p in found) == ["new:0", "new:1", "new:2"]


def _redis_as(server: FalkorDBServer, password: str, *command: str) -> bytes:
    """One Redis command after AUTH (the fixture's own client cannot authenticate)."""
    for _ in range(40):  # the connection after a closed Bolt session is never answered
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.3) as sock:
                sock.sendall(_command("AUTH", password))
                assert sock.recv(100) == b"+OK\r\n"
                sock.sendall(_command(*command))
                return sock.recv(1000)
        except TimeoutError:
            continue
    raise AssertionError("Redis never answered")


def test_a_refused_login_settles_no_dialect(open_store, falkordb) -> None:
    # FalkorDB's Bolt side checks a non-empty password with Redis AUTH, which fails while
    # the server has none configured (an empty one skips the check altogether).
    store = open_store(password="s3cret")  # dialect "auto"
    with pytest.raises(KnowledgeUnavailable):
        store.search("budget", 3, Deadline(3))
    assert store.backend == "graph"  # neither "neo4j" nor "falkordb" for good
    assert falkordb.redis("CONFIG", "SET", "requirepass", "s3cret") == b"+OK\r\n"
    try:
        until = time.monotonic() + 10
        while True:  # a fresh connection may wait out one stalled handshake first
            try:
                store.upsert(doc("d1", "The budget line."))
                break
            except KnowledgeUnavailable:
                assert time.monotonic() < until
        assert [p.document_id for p in store.search("budget", 3, Deadline(5))] == ["d1"]
        assert store.backend == "falkordb"
    finally:
        assert _redis_as(falkordb, "s3cret", "CONFIG", "SET", "requirepass", "") == b"+OK\r\n"


def test_check_reports_the_server_and_the_indexes(make_app, falkordb) -> None:
    app = make_app(neo4j_uri=falkordb.bolt_url, neo4j_user="falkordb")
    output = app.test_cli_runner().invoke(args=["check"]).output
    assert "OK      graph server: FalkorDB over Bolt 5.7 (it announces Neo4j/5.13.0)" in output
    assert "OK      graph full-text index Chunk: ONLINE" in output
    assert "graph: " not in output  # no problem line
