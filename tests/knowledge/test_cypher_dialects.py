"""The two Cypher dialects and the shared statements, checked without a server."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.dialect_falkordb import MAX_STATEMENT_BYTES, FalkorDialect, encode
from bot.knowledge.graph.dialect_neo4j import Neo4jDialect
from bot.knowledge.graph.schema import (
    GraphSchema,
    SearchIndex,
    hits_query,
    quote,
    run,
    vector_literal,
)
from bot.knowledge.graph.search import custom_statement, vector_hits
from bot.knowledge.graph.write import write_document
from bot.knowledge.store import Chunk, Document

NEO4J, FALKOR = Neo4jDialect(), FalkorDialect()
SCHEMA = GraphSchema()


class FakeResult(list):
    def data(self) -> list[dict]:
        return list(self)

    def consume(self) -> None:
        return None


class FakeTx:
    """Records statements; creation statements return one node id per row."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def run(self, query: str, params: dict[str, Any]) -> FakeResult:
        self.statements.append((query, params))
        rows = params.get("rows") if "RETURN row.seq" in query else None
        return FakeResult({"seq": row["seq"], "node": 100 + row["seq"]} for row in rows or [])


def pasted_bytes(query: str, params: dict[str, Any]) -> int:
    """What FalkorDB pastes into its ~4,090-byte buffer: the query and the (already
    escaped) parameters verbatim, strings between quotes."""

    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode()) + 2
        if isinstance(value, dict):
            return 2 + sum(len(k) + 2 + size(v) + 2 for k, v in value.items())
        if isinstance(value, list):
            return 2 + sum(size(v) + 2 for v in value)
        return len(repr(value))

    return len(query.encode()) + size(params) if params else 0


def as_read(sent: str) -> str:
    """An escaped string as FalkorDB's Cypher lexer reads it back."""
    return re.sub(r"\\(.)", r"\1", sent)


def doc(*texts: str, people: tuple[str, ...] = ("Ann", "Bo")) -> Document:
    chunks = tuple(Chunk(seq=i, text=t, speakers=("Ann",)) for i, t in enumerate(texts))
    return Document(
        "d1", "Budget call", "transcript", "d1.txt", "2026-03-10", "sha", chunks, people
    )


def test_neo4j_index_statements_follow_the_manual() -> None:
    statements = NEO4J.index_statements(SCHEMA, vectors=True, rows=[])
    assert all(" IF NOT EXISTS " in s for choices in statements for s in choices)
    (fulltext,), document, person, term, (vector,) = statements
    assert fulltext.startswith("CREATE FULLTEXT INDEX `chunk_fulltext` IF NOT EXISTS")
    assert "FOR (c:`Chunk`) ON EACH [c.`text`, c.`title`]" in fulltext
    # A uniqueness constraint (its range index serves MERGE), else a plain range index.
    assert document == (
        "CREATE CONSTRAINT `document_id_unique` IF NOT EXISTS "
        "FOR (n:`Document`) REQUIRE n.`id` IS UNIQUE",
        "CREATE RANGE INDEX `document_id` IF NOT EXISTS FOR (n:`Document`) ON (n.`id`)",
    )
    assert "FOR (n:`Person`) REQUIRE n.`name` IS UNIQUE" in person[0]
    assert "FOR (n:`SearchTerm`) REQUIRE n.`stem` IS UNIQUE" in term[0]
    assert vector.startswith("CREATE VECTOR INDEX `chunk_embedding` IF NOT EXISTS")
    assert "`vector.dimensions`: 1024" in vector and "'cosine'" in vector
    assert len(NEO4J.index_statements(SCHEMA, vectors=False, rows=[])) == len(statements) - 1


def test_neo4j_search_procedures_take_user_text_only_as_parameters() -> None:
    call, params = NEO4J.fulltext_call(SCHEMA, '"budget"', 20)
    assert call.startswith("CALL db.index.fulltext.queryNodes($index, $q, {limit: 20})")
    assert params == {"index": "chunk_fulltext", "q": '"budget"'}
    call, params = NEO4J.vector_call(SCHEMA, [0.5, 0.25], 7)
    assert call == "CALL db.index.vector.queryNodes($index, 7, $embedding) YIELD node, score"
    assert params == {"index": "chunk_embedding", "embedding": [0.5, 0.25]}
    assert NEO4J.vector_order == "DESC" and FALKOR.vector_order == "ASC"  # similarity/distance


def test_falkordb_creates_only_missing_indexes() -> None:
    everything = [s for (s,) in FALKOR.index_statements(SCHEMA, vectors=True, rows=[])]
    assert everything[0].startswith("CALL db.idx.fulltext.createNodeIndex({label: 'Chunk'")
    assert everything[0].endswith("'text', 'title')") and "stopwords: [" in everything[0]
    assert "CREATE INDEX FOR (n:`Document`) ON (n.`id`)" in everything
    assert "dimension: 1024, similarityFunction: 'cosine'" in everything[-1]
    existing = [
        {"label": "Chunk", "types": {"text": ["FULLTEXT"], "embedding": ["VECTOR"]}},
        {"label": "Document", "types": {"id": ["RANGE"]}},
        {"label": "Person", "types": {"name": ["RANGE"]}},
        {"label": "SearchTerm", "types": {"stem": ["RANGE"]}},
    ]
    assert FALKOR.index_statements(SCHEMA, vectors=True, rows=existing) == [
        (
            "CALL db.idx.fulltext.createNodeIndex({label: 'Chunk', stopwords: ["
            + everything[0].split("stopwords: [")[1].split("]")[0]
            + "]}, 'title')",
        )
    ]


def test_falkordb_vector_search_is_a_parameter_free_literal() -> None:
    call, params = FALKOR.vector_call(SCHEMA, [0.5, -0.25], 5)
    assert params == {}
    assert "db.idx.vector.queryNodes('Chunk', 'embedding', 5, vecf32([0.5,-0.25]))" in call
    for bad in ([math.nan], [math.inf], ["1) MATCH (n) DETACH DELETE n //"]):
        with pytest.raises(ValueError):
            vector_literal(bad)


def test_falkordb_strings_are_escaped_for_its_quoting() -> None:
    assert encode("it's a \\ test\x00") == "it\\'s a \\\\ test"
    assert encode({"rows": [{"text": "'"}], "n": 3}) == {"rows": [{"text": "\\'"}], "n": 3}
    assert NEO4J.encode_params({"q": "it's"}) == {"q": "it's"}


@pytest.mark.parametrize("name", ["Chunk`) MATCH (n", "two words", "1abc", "", "x" * 65])
def test_unsafe_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        quote(name)
    with pytest.raises(ValueError):
        GraphSchema(chunk_label=name)


def test_configured_names_appear_quoted_everywhere() -> None:
    schema = GraphSchema(chunk_label="Passage", document_label="Source", text_property="body")
    query = hits_query(schema, NEO4J, "CALL x() YIELD node, score", "DESC", 10)
    assert "(d:`Source`)-[:HAS_CHUNK]->(c)" in query and "c.`body` AS text" in query
    assert "LIMIT 10" in query
    statements = NEO4J.index_statements(schema, False, [])
    assert any("(c:`Passage`) ON EACH [c.`body`" in s for (s, *_) in statements)


def test_oversized_statements_are_refused_before_reaching_falkordb() -> None:
    tx = FakeTx()
    with pytest.raises(KnowledgeUnavailable):
        run(tx, FALKOR, "RETURN $s", {"s": "x" * MAX_STATEMENT_BYTES})
    run(tx, NEO4J, "RETURN $s", {"s": "x" * 100_000})  # Neo4j has no such cap
    run(tx, FALKOR, "RETURN " + "1" * 100_000, {})  # nor does FalkorDB without parameters
    assert len(tx.statements) == 2


def test_write_document_writes_the_sha_last_and_replaces_links() -> None:
    tx = FakeTx()
    write_document(tx, SCHEMA, NEO4J, doc("one", "two"), None, now=1.0)
    queries = [q for q, _ in tx.statements]
    assert "d.sha256 = ''" in queries[0] and "DETACH DELETE c" in queries[1]
    assert "DELETE r" in queries[2] and "SPOKE_IN" in queries[2]
    assert queries[-1].endswith("d.text_chunks = $chunks, d.sha256 = $sha, d.updated_at = $now")
    assert tx.statements[-1][1]["sha"] == "sha"
    people = next(p for q, p in tx.statements if "MERGE (p:`Person`" in q)["people"]
    assert people == [{"name": "Ann", "order": 0}, {"name": "Bo", "order": 1}]


def test_falkordb_long_chunks_are_appended_in_pieces_under_the_cap() -> None:
    text = "会议记录 it's \\ " * 400  # ~6,000 bytes: one statement could not carry it
    tx = FakeTx()
    write_document(tx, SCHEMA, FALKOR, doc(text, "short"), [[0.1] * 4, [0.2] * 4], now=1.0)
    for query, params in tx.statements:
        assert pasted_bytes(query, params) <= 4000
    created = next(p for q, p in tx.statements if "RETURN row.seq" in q)["rows"][0]["text"]
    pieces = [p["piece"] for q, p in tx.statements if "+ $piece" in q]
    assert pieces and as_read(created) + "".join(map(as_read, pieces)) == text
    vectors = [q for q, p in tx.statements if "vecf32(row[1])" in q]
    assert vectors and "[100, [0.1,0.1,0.1,0.1]]" in vectors[0]


def test_neo4j_vectors_travel_as_parameters() -> None:
    tx = FakeTx()
    write_document(tx, SCHEMA, NEO4J, doc("one"), [[0.5, 0.5]], now=1.0)
    query, params = next((q, p) for q, p in tx.statements if "row.embedding" in q)
    assert "elementId(c) = row.node" in query
    assert params["rows"] == [{"node": 100, "embedding": [0.5, 0.5]}]


def test_a_custom_retrieval_query_gets_its_parameters() -> None:
    query = (
        "CALL x($query, $embedding) YIELD node, score RETURN node.t AS text, 's' AS source, score"
    )
    statement, params = custom_statement(query, NEO4J, "it's the budget", 5, [0.5])
    assert statement == query and params["embedding"] == [0.5]
    assert params["question"] == "it's the budget" and params["query"] == '"budget"'
    statement, params = custom_statement(query, FALKOR, "x" * 5000, 5, [0.5, 0.25])
    assert "$embedding" not in statement and "[0.5,0.25]" in statement  # a literal, see above
    assert "embedding" not in params and len(params["question"]) == 1500
    assert "null" in custom_statement(query, FALKOR, "budget", 5, None)[0]


def test_vector_queries_ask_past_tombstones_until_the_answer_is_whole() -> None:
    """FalkorDB counts deleted vectors among the k nearest: a listing read before 30 of
    them were deleted (the web process's, up to a minute old) says nothing of them."""
    asked: list[int] = []

    def read(work: Any) -> list[dict]:
        tx = FakeTx()
        work(tx)
        k = int(re.search(r"'embedding', (\d+),", tx.statements[-1][0])[1])
        asked.append(k)
        live = max(0, min(20, k - 30))  # the 30 tombstones are the nearest
        return [{"chunk_id": f"c{i}"} for i in range(min(12, live))]  # LIMIT 12

    listed = SearchIndex("Chunk", "ONLINE", dimensions=2, entries=20, added=40)
    rows = vector_hits(read, SCHEMA, FALKOR, listed, [0.5, 0.5], limit=12)
    assert len(rows) == 12 and asked == [24, 96]  # its stale share first, then 4 times more
    calls: list[int] = []
    neo4j = SearchIndex("chunk_embedding", "ONLINE", dimensions=2)  # no counts: one query
    vector_hits(lambda work: calls.append(1) or [], SCHEMA, NEO4J, neo4j, [0.5, 0.5], 12)
    assert calls == [1]
