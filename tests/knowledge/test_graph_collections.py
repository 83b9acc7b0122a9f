"""Collections in the graph store, against a real FalkorDB over Bolt (the real neo4j driver):
a search limited to some collections ranks exactly as a graph holding only their documents,
never returns a forbidden passage, and follows `move` (the Neo4j dialect's statements are
pinned in test_graph_neo4j_collections.py).

The two graphs of a comparison share the test's FalkorDB (its Bolt side reaches one graph
whatever the database name), told apart by their labels: every statement of the store
names its labels, and FalkorDB keeps one full-text and one vector index per label."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.formats import parse_file
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.schema import GraphSchema
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.store import Chunk, Document, Readable
from bot.models import Passage
from tests.fakes.mistral_server import MistralStub
from tests.services.falkordb import GRAPH, FalkorDBServer
from tests.support import HOSTILE_GRAPH_QUESTIONS, SAMPLE

KEY = "sk-graph-collections-0123"
# The reference graph: only the permitted documents, under labels of its own.
ONLY = GraphSchema(
    chunk_label="OnlyChunk",
    document_label="OnlyDocument",
    person_label="OnlyPerson",
    term_label="OnlyTerm",
)
PERMITTED = frozenset({"a", "b"})
QUESTIONS = [
    "why was Germany deprioritised?",
    "budget for the UNEA preparation and the side event",
    "who attended the UNEA meeting?",
    "what did the funding check-in decide about donors?",
    "how do we write meeting notes?",
    "UK engagement timeline with Defra",
    "plastics monitoring data",
    "What is the capital of Peru?",
]
# The sample notes spread over three collections, and notes of each that compete with
# them for the same words: collection c holds the best matches of most questions.
SAMPLE_COLLECTIONS = {
    "2026-01-22-funding-check-in.txt": "a",
    "2026-02-18-country-prioritisation-meeting.md": "b",
    "2026-03-04-unea-preparation-meeting.md": "c",
    "team-handbook.md": "a",
    "uk-engagement-timeline.md": "c",
}
EXTRA = [
    ("c1", "c", "Germany budget review", ["Germany budget: the Germany programme ended.",
     "Why Germany was deprioritised: the budget, the donors and the UNEA side event."]),
    ("a1", "a", "Donor call", ["The donors renewed core funding; the budget stays flat.",
     "Notes of the call are written within two days, as the handbook says."]),
    ("c2", "c", "UNEA side event plan", ["Side event budget for UNEA-8 in Nairobi.",
     "Who attended: Amara Okafor, Priya Raman. Plastics monitoring data shared with Defra."]),
    ("b1", "b", "Kenya programme", ["Kenya stays a focus country; the Brazil budget is cut.",
     "The UK engagement continues through the Defra timeline."]),
    ("c3", "c", "Meeting notes guide", ["How to write meeting notes: a heading, a date.",
     "Meeting notes name who attended and what was decided."]),
]  # fmt: skip


def documents() -> list[Document]:
    """The corpus, in the order both graphs are written (collection c's interleaved)."""
    docs = []
    for name, collection in SAMPLE_COLLECTIONS.items():
        path = SAMPLE / name
        parsed = parse_file(path, path.read_bytes(), doc_id=path.stem, source=f"sample/{name}")
        docs.append(replace(parsed, collection=collection))
    for doc_id, collection, title, texts in EXTRA:
        chunks = tuple(Chunk(seq=i, text=t) for i, t in enumerate(texts))
        docs.append(
            Document(doc_id, title, "text", f"{doc_id}.txt", "", "s1", chunks, (), collection)
        )
    return docs


@pytest.fixture
def open_store(falkordb: FalkorDBServer, mistral: MistralStub):
    """Factory: a FalkorDB store (closed after the test; the reference labels' vector index
    dropped, as the fixture drops the default one)."""
    stores: list[GraphKnowledgeStore] = []

    def build(embeddings: bool = False, **options: Any) -> GraphKnowledgeStore:
        embedder = MistralEmbedder(KEY, server_url=mistral.url) if embeddings else None
        client = GraphClient(falkordb.bolt_url, "falkordb", "")
        store = GraphKnowledgeStore(client, dialect="falkordb", embedder=embedder, **options)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()
    falkordb.redis("GRAPH.QUERY", GRAPH, "DROP VECTOR INDEX FOR (c:OnlyChunk) ON (c.embedding)")


def found(
    store: GraphKnowledgeStore, question: str, collections: Readable = None, k: int = 5
) -> list[Passage]:
    return store.search(question, k, Deadline(10), collections)


def shown(passages: list[Passage]) -> list[tuple]:
    """What a sender could see of the passages, in order."""
    return [(p.chunk_id, p.document_id, p.text, p.source, p.speakers) for p in passages]


def two_graphs(
    open_store: Callable[..., GraphKnowledgeStore], **options: Any
) -> tuple[GraphKnowledgeStore, GraphKnowledgeStore]:
    """(every collection's graph, the graph of only collections a and b), both written."""
    mixed, only = open_store(**options), open_store(schema=ONLY, **options)
    for doc in documents():
        mixed.upsert(doc)
        if doc.collection in PERMITTED:
            only.upsert(doc)
    return mixed, only


def assert_ranked_alike(
    mixed: GraphKnowledgeStore, only: GraphKnowledgeStore, questions: list[str]
) -> None:
    """Every question: the limited search of `mixed` is the whole search of `only`, and
    at least one would have shown collection c's passages."""
    differs = False
    for question in questions:
        limited, expected = found(mixed, question, PERMITTED), found(only, question)
        assert shown(limited) == shown(expected), question
        assert [p.score for p in limited] == pytest.approx([p.score for p in expected], rel=1e-9)
        everything = found(mixed, question)
        differs = differs or shown(everything) != shown(limited)
    assert differs  # the corpus tests something: collection c would have answered


@pytest.mark.parametrize("floor", [False, True], ids=["no floor", "relevance floor"])
def test_a_limited_search_ranks_as_a_graph_of_only_those_collections(open_store, floor) -> None:
    mixed, only = two_graphs(open_store, relevance_floor=floor)
    assert_ranked_alike(mixed, only, QUESTIONS)
    assert found(mixed, "UK engagement timeline with Defra", frozenset({"c"}))  # c's own


@pytest.mark.parametrize("floor", [False, True], ids=["no floor", "relevance floor"])
def test_a_limited_hybrid_search_ranks_as_a_graph_of_only_those_collections(
    open_store, synonym, floor
) -> None:
    mixed, only = two_graphs(open_store, embeddings=True, relevance_floor=floor)
    meaning = f"{synonym('donors')} {synonym('handbook')}"  # only the vector leg sees it
    assert_ranked_alike(mixed, only, [*QUESTIONS, meaning])
    assert bool(found(mixed, meaning, PERMITTED)) is not floor  # a guess, without the floor


def test_a_forbidden_document_is_never_found_even_as_the_only_match(open_store, synonym) -> None:
    store = open_store(embeddings=True)
    secret = "The kestrel fund: salaries for the merger, board eyes only."
    store.upsert(Document("s", "Kestrel", "text", "s.txt", "", "s1", (Chunk(0, secret),),
                          ("Ann Board",), "board"))  # fmt: skip
    store.upsert(Document("g", "Rota", "text", "g.txt", "", "s1", (Chunk(0, "The rota."),)))
    staff = frozenset({"general"})
    for question in ("kestrel fund salaries", synonym("kestrel"), "who attended the kestrel?"):
        assert [p.document_id for p in found(store, question, staff)] in ([], ["g"])
        assert found(store, question)[0].document_id == "s"  # unlimited, it is found
        assert found(store, question, frozenset({"board"}))[0].document_id == "s"
    assert found(store, "kestrel", frozenset()) == []  # reads nothing


LONG_NAMES = frozenset({"general", "board", "hr-notes", "x" * 40, "y" * 40, "z" * 40})


@pytest.mark.parametrize("question", HOSTILE_GRAPH_QUESTIONS, ids=lambda q: repr(q[:12]))
def test_hostile_questions_fit_a_limited_search(open_store, question) -> None:
    store = open_store()
    store.upsert(Document("d1", "T", "text", "d1.txt", "", "s1", (Chunk(0, "The budget."),)))
    assert isinstance(found(store, question, LONG_NAMES), list)


def test_a_pasted_essay_still_fits_every_statement_of_a_limited_search(open_store, caplog) -> None:
    # Words enough to fill FalkorDB's statement cap: the evidence keeps as many as fit
    # beside the collections' names.
    words = [f"budget{chr(97 + i // 26)}{chr(97 + i % 26)}" + "q" * 60 for i in range(32)]
    store = open_store()
    store.upsert(Document("d1", "T", "text", "d1.txt", "", "s1", (Chunk(0, " ".join(words)),)))
    with caplog.at_level(logging.WARNING):
        assert [p.document_id for p in found(store, " ".join(words), LONG_NAMES)] == ["d1"]
    assert "failed" not in caplog.text


def test_equal_scores_rank_alike_in_any_graph(open_store) -> None:
    """Chunks alike (same words, same vectors) come in chunk-id order, whichever node ids
    the graph gave them: here written in opposite orders."""
    alike = [f"d{i}" for i in range(6)]
    first, second = open_store(embeddings=True), open_store(embeddings=True, schema=ONLY)
    for store, order in ((first, [*alike, "w"]), (second, ["w", *reversed(alike)])):
        for doc_id in order:
            chunk = Chunk(0, "Rota." if doc_id == "w" else "The kestrel survey.")
            store.upsert(Document(doc_id, "Notes", "text", f"{doc_id}.txt", "", "s1", (chunk,)))
    for question in ("kestrel survey", "rota"):
        ranked = [shown(found(store, question, k=10)) for store in (first, second)]
        assert ranked[0] == ranked[1], question
    assert [p.document_id for p in found(first, "kestrel survey")] == alike[:5]


def test_move_changes_what_a_sender_sees(open_store) -> None:
    store = open_store()
    minutes = Document("m", "Minutes", "text", "m.txt", "", "s1", (Chunk(0, "Merger terms."),))
    store.upsert(minutes)  # no collection: a new document goes to "general"
    staff, board = frozenset({"general"}), frozenset({"board"})
    assert [d.collection for d in store.documents()] == ["general"]
    assert [p.document_id for p in found(store, "merger", staff)] == ["m"]
    version = store.version()

    assert store.move(["m", "m", "missing"], "board") == 1
    assert store.version() != version
    assert [d.collection for d in store.documents()] == ["board"]
    assert found(store, "merger", staff) == [] and found(store, "merger", board)
    chunks = "MATCH (c:Chunk) RETURN c.collection AS collection"
    assert read(store, chunks) == [{"collection": "board"}]
    assert store.document_sha("m") == "s1"  # the next ingest skips it: nothing to redo

    store.upsert(replace(minutes, sha256="s2"))  # re-ingested: it stays where it was moved
    assert found(store, "merger", staff) == [] and found(store, "merger", board)
    store.upsert(replace(minutes, sha256="s3", collection="general"))  # ingest --collection
    assert [p.document_id for p in found(store, "merger", staff)] == ["m"]
    assert store.move(["missing"], "board") == 0
    with pytest.raises(ValueError):
        store.move(["m"], "Board Room")


def test_a_move_keeps_the_vector_index_free_of_tombstones(open_store, caplog) -> None:
    # FalkorDB indexes each moved chunk again, leaving its old vector behind as a tombstone.
    store = open_store(embeddings=True)
    chunks = tuple(Chunk(i, f"Minute {i} of the falcon merger.") for i in range(70))
    store.upsert(Document("m", "Minutes", "text", "m.txt", "", "s1", chunks))
    with caplog.at_level(logging.INFO, logger="bot.knowledge.graph.indexes"):
        assert store.move(["m"], "board") == 1
    assert "rebuilding the vector index (70 live entries, up to 70 tombstones)" in caplog.text
    assert len(found(store, "falcon", frozenset({"board"}), k=70)) == 70


def test_a_graph_written_before_collections_reads_as_general(open_store) -> None:
    store = open_store()
    store.upsert(Document("old", "Old", "text", "old.txt", "", "s1", (Chunk(0, "Audit plan."),)))
    strip = "MATCH (n) WHERE n:Document OR n:Chunk REMOVE n.collection"
    store.client.write(lambda tx: tx.run(strip).consume(), Deadline(5))
    assert read(store, "MATCH (c:Chunk) RETURN c.collection AS collection") == [
        {"collection": None}
    ]
    assert [d.collection for d in store.documents()] == ["general"]
    assert [p.document_id for p in found(store, "audit", frozenset({"general"}))] == ["old"]
    assert found(store, "audit", frozenset({"board"})) == []
    store.upsert(Document("old", "Old", "text", "old.txt", "", "s2", (Chunk(0, "Audit plan."),)))
    assert read(store, "MATCH (c:Chunk) RETURN c.collection AS collection") == [
        {"collection": "general"}
    ]


CUSTOM = (
    "CALL db.idx.fulltext.queryNodes('Chunk', $query) YIELD node, score "
    "MATCH (d:Document)-[:HAS_CHUNK]->(node) {where}"
    "RETURN node.text AS text, d.title AS source, score, d.id AS document_id "
    "ORDER BY score DESC LIMIT $k"
)


def test_a_custom_retrieval_query_must_filter_by_collections(open_store) -> None:
    filtering = open_store(
        retrieval_query=CUSTOM.format(where="WHERE d.collection IN $collections ")
    )
    blind = open_store(retrieval_query=CUSTOM.format(where=""))
    filtering.upsert(
        Document("s", "S", "text", "s.txt", "", "s1", (Chunk(0, "Merger."),), (), "board")
    )
    filtering.upsert(Document("g", "G", "text", "g.txt", "", "s1", (Chunk(0, "Merger rota."),)))
    everything = frozenset({"general", "board"})
    assert {p.document_id for p in found(filtering, "merger", everything)} == {"s", "g"}
    assert [p.document_id for p in found(filtering, "merger", frozenset({"general"}))] == ["g"]
    assert {p.document_id for p in found(blind, "merger")} == {"s", "g"}  # none configured
    with pytest.raises(KnowledgeUnavailable, match=r"must filter by \$collections"):
        found(blind, "merger", frozenset({"general"}))


class Recording:
    """A store's client that records every statement its reads send."""

    def __init__(self, client: GraphClient) -> None:
        self.client, self.sent = client, []

    def read(self, work: Callable[[Any], Any], deadline: Deadline) -> Any:
        return self.client.read(lambda tx: work(_Recorded(tx, self.sent)), deadline)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class _Recorded:
    def __init__(self, tx: Any, sent: list[str]) -> None:
        self.tx, self.sent = tx, sent

    def run(self, query: str, params: dict | None = None) -> Any:
        self.sent.append(query)
        return self.tx.run(query, params)


def test_every_statement_of_a_limited_falkordb_search_filters(open_store, synonym) -> None:
    store = open_store(embeddings=True)
    for doc in documents():
        store.upsert(doc)
    store.client = recording = Recording(store.client)
    for question in ("who attended the UNEA meeting?", f"budget {synonym('plastics')}"):
        assert found(store, question, PERMITTED)
    kinds = {"fulltext.queryNodes", "vector.queryNodes", "HAS_TERM", "vecf32", "SPOKE_IN"}
    assert all(any(kind in q for q in recording.sent) for kind in kinds)  # each was read
    # A parameter, or a literal in the statements FalkorDB takes parameter-free.
    unfiltered = [q for q in recording.sent if "IN $collections" not in q]
    assert unfiltered and all("IN ['a', 'b']" in q for q in unfiltered)
    assert all("vecf32([" in q for q in unfiltered)  # only those


def read(store: GraphKnowledgeStore, cypher: str) -> list[dict]:
    return store.client.read(lambda tx: tx.run(cypher).data(), Deadline(5))
