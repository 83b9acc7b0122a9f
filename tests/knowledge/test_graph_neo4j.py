"""The store on the Neo4j dialect, through the recording stand-in of the client protocol
(tests/fakes/graph_client.py): no Neo4j server can be installed here, so these pin which
statements reach it, in which access mode, and what the store does with the answers."""

from __future__ import annotations

import logging

import pytest

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.client import GraphQueryError, _acquire_seconds
from bot.knowledge.graph.dialect_neo4j import Neo4jDialect
from bot.knowledge.graph.schema import GraphSchema
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.graph.write import write_document
from bot.knowledge.store import Chunk, Document
from tests.fakes.graph_client import (
    FULLTEXT,
    HIT,
    LOOKUPS,
    Embedder,
    RecordingClient,
    index,
    store_on,
    vector_index,
)

NOT_FOUND = "Neo.ClientError.Procedure.ProcedureNotFound"
UNAUTHORIZED = "Neo.ClientError.Security.Unauthorized"


def search(store: GraphKnowledgeStore, question: str = "budget") -> list:
    return store.search(question, 3, Deadline(5))


def test_the_search_path_only_reads_even_when_indexes_are_missing() -> None:
    client = RecordingClient(indexes=[])
    store = store_on(client, embedder=Embedder())
    with pytest.raises(KnowledgeUnavailable):
        search(store)  # nothing to search yet: "unavailable", and nothing created
    client.indexes = [FULLTEXT, vector_index(), *LOOKUPS]
    store.indexes.forget()
    assert [p.chunk_id for p in search(store)] == ["d1:0"]
    assert client.statements("write") == []
    assert not [q for q in client.statements() if "CREATE" in q or "awaitIndexes" in q]
    assert client.statements()[0].startswith("SHOW INDEXES YIELD name, type, entityType")


def test_a_role_without_show_index_still_searches_as_configured() -> None:
    client = RecordingClient(indexes=[FULLTEXT])
    client.errors["SHOW INDEXES"] = GraphQueryError(
        "graph query failed", "Neo.ClientError.Security.Forbidden"
    )
    store = store_on(client)
    assert [p.chunk_id for p in search(store)] == ["d1:0"]
    params = next(p for _, q, p in client.sent if "fulltext.queryNodes" in q)
    assert params["index"] == "chunk_fulltext" and client.statements("write") == []


def test_a_leg_whose_index_is_not_online_is_skipped() -> None:
    client = RecordingClient(indexes=[FULLTEXT, vector_index(state="POPULATING")])
    embedder = Embedder()
    store = store_on(client, embedder=embedder)
    assert [p.chunk_id for p in search(store)] == ["d1:0"]
    assert not [q for q in client.statements() if "db.index.vector.queryNodes" in q]
    assert embedder.calls == 0  # no question embedding for a leg that cannot run

    client.indexes = [index("chunk_fulltext", "FULLTEXT", "Chunk", ["text"], state="FAILED")]
    client.indexes.append(vector_index())
    client.answers["db.index.vector.queryNodes"] = [{**HIT, "chunk_id": "d1:1"}]
    store.indexes.forget()
    assert [p.chunk_id for p in search(store)] == ["d1:1"]  # the vector leg alone
    assert not [q for q in client.statements()[-3:] if "fulltext.queryNodes" in q]


def test_a_failing_vector_leg_leaves_the_fulltext_hits() -> None:
    client = RecordingClient(indexes=[FULLTEXT, vector_index(), *LOOKUPS])
    client.errors["db.index.vector.queryNodes"] = GraphQueryError(
        "graph query failed", "Neo.ClientError.Procedure.ProcedureCallFailed"
    )
    store = store_on(client, embedder=Embedder())
    assert [p.chunk_id for p in search(store)] == ["d1:0"]
    assert [q for q in client.statements() if "db.index.vector.queryNodes" in q]


def test_an_index_of_another_name_or_length_is_found_not_duplicated() -> None:
    # An existing graph's vector index over the same label and property, for another model.
    client = RecordingClient(indexes=[FULLTEXT, vector_index("openai", 1536), *LOOKUPS])
    store = store_on(client, embedder=Embedder(4))
    assert [p.chunk_id for p in search(store)] == ["d1:0"]
    assert not [q for q in client.statements() if "vector.queryNodes" in q]  # it would fail
    lines = store.diagnose()
    assert [level for level, text in lines if "1536" in text] == ["error"]
    assert not [q for q in client.statements("write") if "VECTOR INDEX" in q]

    client.indexes[1] = vector_index("openai", 4)  # the right length: used by its name
    store.indexes.forget()
    search(store)
    query, params = next((q, p) for _, q, p in client.sent if "vector.queryNodes" in q)
    assert params["index"] == "openai"


def test_ingest_creates_with_statements_of_the_version_floor_then_waits() -> None:
    client = RecordingClient(indexes=[])
    store = store_on(client, embedder=Embedder(4))
    chunk = Chunk(seq=0, text="The budget.")
    store.upsert(Document("d1", "Budget", "text", "d1.txt", "", "s1", (chunk,), ("Ann",)))
    sent = client.statements()
    created = client.statements("write")[:5]
    assert created[0].startswith("CREATE FULLTEXT INDEX `chunk_fulltext` IF NOT EXISTS")
    assert created[1].startswith("CREATE CONSTRAINT `document_id_unique` IF NOT EXISTS")
    assert created[2].startswith("CREATE CONSTRAINT `person_name_unique` IF NOT EXISTS")
    assert created[3].startswith("CREATE CONSTRAINT `searchterm_stem_unique` IF NOT EXISTS")
    # CREATE VECTOR INDEX arrived in 5.15 (5.13 had only db.index.vector.createNodeIndex).
    assert created[4].startswith("CREATE VECTOR INDEX `chunk_embedding` IF NOT EXISTS")
    assert "`vector.dimensions`: 4" in created[4]
    wait = sent.index("CALL db.awaitIndexes(60)")
    assert sent[wait - 1] == created[4] and sent[wait + 1].startswith("SHOW INDEXES")
    assert ("read", "CALL db.awaitIndexes(60)", {}) in client.sent
    assert not [q for q in sent if "createNodeIndex" in q or "db.indexes()" in q]
    assert not [q for q in sent if "dbms.procedures" in q]  # the dialect was configured


def test_a_uniqueness_constraint_that_existing_data_breaks_becomes_a_range_index() -> None:
    client = RecordingClient(indexes=[FULLTEXT])
    client.errors["CREATE CONSTRAINT `person_name_unique`"] = GraphQueryError(
        "graph query failed", "Neo.DatabaseError.Schema.ConstraintCreationFailed"
    )
    store = store_on(client)
    store.prepare(Deadline(5))
    tried = client.statements("write")
    person = tried.index(
        "CREATE RANGE INDEX `person_name` IF NOT EXISTS FOR (n:`Person`) ON (n.`name`)"
    )
    assert tried[person - 1].startswith("CREATE CONSTRAINT `person_name_unique`")


@pytest.mark.parametrize(
    ("agent", "supported"),
    [
        ("Neo4j/5.13.0", False),
        ("Neo4j/5.14.1", False),
        ("Neo4j/5.15.0", True),
        ("Neo4j/5.26.12", True),
        ("Neo4j/2025.01.0", True),
        ("Neo4j/2026.04.0", True),
    ],
)
def test_check_states_the_version_floor(agent: str, supported: bool) -> None:
    client = RecordingClient(agent=agent, indexes=[FULLTEXT, *LOOKUPS])
    lines = store_on(client).diagnose()
    assert lines[0] == ("ok", f"graph server: {agent} over Bolt 5.4, dialect neo4j")
    floor = [text for level, text in lines if level == "error" and "5.15" in text]
    assert bool(floor) is not supported
    if not supported:  # nothing is created on a server that cannot take it
        assert client.statements("write") == []


def test_the_dialect_is_settled_by_procedure_not_found_only() -> None:
    client = RecordingClient()
    store = store_on(client, dialect="auto")
    client.errors["<server info>"] = GraphQueryError("graph query failed", UNAUTHORIZED)
    with pytest.raises(KnowledgeUnavailable):
        search(store)
    del client.errors["<server info>"]
    client.errors["dbms.procedures"] = GraphQueryError("graph query failed", UNAUTHORIZED)
    with pytest.raises(KnowledgeUnavailable):
        search(store)
    assert store.backend == "graph"  # neither failure fixed a dialect
    client.errors["dbms.procedures"] = GraphQueryError("graph query failed", NOT_FOUND)
    client.indexes = [FULLTEXT]
    assert search(store) and store.backend == "neo4j"


def test_webhook_calls_get_short_acquisition_budgets_and_offline_ones_long() -> None:
    # A webhook's budget (at most 14 s): 1.5 s per attempt, so a retry still fits.
    assert [_acquire_seconds(12.0, tries) for tries in range(4)] == [1.5] * 4
    assert _acquire_seconds(1.0) == 0.5
    # Ingest, the CLI and check: 1.5 s first (a never-answered handshake costs little),
    # then doubling to 10 s for routing and a cold TLS connect to Aura.
    assert [_acquire_seconds(120.0, tries) for tries in range(5)] == [1.5, 3.0, 6.0, 10.0, 10.0]
    assert _acquire_seconds(20.0, 3) == 10.0  # counts and sha lookups


def test_only_the_people_this_write_unlinked_are_cleaned_up() -> None:
    client = RecordingClient()
    client.answers["DELETE r RETURN DISTINCT p.name"] = [{"name": "Ann"}, {"name": "Bo"}]
    chunk = Chunk(seq=0, text="Hello.")
    doc = Document("d1", "Call", "transcript", "d1.txt", "", "s2", (chunk,), ("Bo", "Cy"))
    schema = GraphSchema(person_label="Speaker")
    client.write(lambda tx: write_document(tx, schema, Neo4jDialect(), doc, None, 1.0), None)
    cleanup = [(q, p) for _, q, p in client.sent if "count(r) AS links" in q]
    assert cleanup == [
        (
            "UNWIND $names AS name MATCH (p:`Speaker` {name: name}) "
            "OPTIONAL MATCH (p)-[r]-() WITH p, count(r) AS links WHERE links = 0 DELETE p",
            {"names": ["Ann"]},  # Bo is linked again; nobody else is even looked at
        )
    ]
    assert not [q for q in client.statements() if "DETACH DELETE p" in q]


def test_each_server_notification_is_logged_once(caplog) -> None:
    # With no server-side filter (it needs Bolt 5.2), the driver logs every notification it
    # receives: a deprecation (db.index.vector.queryNodes from 2026.04) is seen, once.
    notifications = logging.getLogger("neo4j.notifications")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            notifications.warning("Received notification from DBMS server: %s", "deprecated x")
    assert len(caplog.records) == 1
