"""A recording stand-in of the graph client protocol the store uses (read, write,
server_info), answering as Neo4j 5 does: no Neo4j server can be installed here, so the
Neo4j tests pin which statements reach it, in which access mode, and what the store does
with the answers (rows shaped as the Cypher manual's SHOW INDEXES documents them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.deadline import Deadline
from bot.knowledge.graph.client import ServerInfo
from bot.knowledge.graph.store import GraphKnowledgeStore


def index(name: str, kind: str, label: str, props: list[str], **extra: Any) -> dict[str, Any]:
    """One SHOW INDEXES row."""
    row = {
        "name": name,
        "type": kind,
        "entityType": "NODE",
        "labelsOrTypes": [label],
        "properties": props,
        "state": "ONLINE",
        "owningConstraint": None,
        "options": {},
    }
    return {**row, **extra}


def vector_index(name: str = "chunk_embedding", dimensions: int = 4, **extra: Any) -> dict:
    config = {"vector.dimensions": dimensions, "vector.similarity_function": "COSINE"}
    options = {"indexProvider": "vector-2.0", "indexConfig": config}
    return index(name, "VECTOR", "Chunk", ["embedding"], options=options, **extra)


FULLTEXT = index("chunk_fulltext", "FULLTEXT", "Chunk", ["text", "title"])
LOOKUPS = [
    index("document_id_unique", "RANGE", "Document", ["id"], owningConstraint="document_id_unique"),
    index("person_name_unique", "RANGE", "Person", ["name"], owningConstraint="person_name_unique"),
]
HIT = {
    "chunk_id": "d1:0",
    "text": "The budget is 12,000 euros.",
    "document_id": "d1",
    "title": "Budget",
    "date": "",
    "speakers": [],
    "score": 1.0,
}


class Result(list):
    def data(self) -> list[dict]:
        return list(self)

    def consume(self) -> None:
        return None

    def single(self) -> dict:
        return self[0]


class RecordingClient:
    """Records (mode, statement, parameters); answers from `indexes`, `answers` (the first
    matching statement prefix) and `errors` (statement prefix -> error raised)."""

    def __init__(self, agent: str = "Neo4j/5.26.0", indexes: list[dict] | None = None) -> None:
        self.agent = agent
        self.indexes = list(indexes or [])
        self.answers: dict[str, list[dict]] = {}
        self.errors: dict[str, Exception] = {}
        self.sent: list[tuple[str, str, dict]] = []

    def read(self, work: Callable[[Any], Any], deadline: Deadline) -> Any:
        return work(_Tx(self, "read"))

    def write(self, work: Callable[[Any], Any], deadline: Deadline) -> Any:
        return work(_Tx(self, "write"))

    def server_info(self, deadline: Deadline) -> ServerInfo:
        self.sent.append(("read", "<server info>", {}))
        if error := self.errors.get("<server info>"):
            raise error
        return ServerInfo(agent=self.agent, bolt="5.4")

    def statements(self, mode: str | None = None) -> list[str]:
        return [query for m, query, _ in self.sent if mode in (None, m)]

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None


class _Tx:
    def __init__(self, client: RecordingClient, mode: str) -> None:
        self.client, self.mode = client, mode

    def run(self, query: str, params: dict | None = None) -> Result:
        self.client.sent.append((self.mode, query, dict(params or {})))
        for prefix, error in self.client.errors.items():
            if prefix in query:
                raise error
        if query.startswith("SHOW INDEXES"):
            return Result(self.client.indexes)
        if "RETURN row.seq AS seq" in query:  # created chunks and their node ids
            return Result({"seq": row["seq"], "node": f"n{row['seq']}"} for row in params["rows"])
        for prefix, rows in self.client.answers.items():
            if prefix in query:
                return Result(rows)
        if query.startswith("CREATE"):  # the server builds what it was asked for
            self.client.indexes.append(index(query.split("`")[1], "RANGE", "x", ["y"]))
        return Result()


class Embedder:
    """The Embedder protocol, with vectors of a chosen length."""

    name = "test-embed"

    def __init__(self, dimensions: int = 4) -> None:
        self.dimensions = dimensions
        self.calls = 0

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        self.calls += 1
        return [[0.5] * self.dimensions for _ in texts]

    def close(self) -> None:
        return None


def store_on(client: RecordingClient, **options: Any) -> GraphKnowledgeStore:
    client.answers.setdefault("RETURN 1 AS found", [{"found": 1}])  # chunks carry vectors
    client.answers.setdefault("db.index.fulltext.queryNodes", [HIT])
    return GraphKnowledgeStore(client, dialect=options.pop("dialect", "neo4j"), **options)
