"""Writing (and removing) one document in the graph, in statements every dialect accepts.

The sha256 is written last, so an interrupted write is redone by the next ingest: FalkorDB
applies each statement at once (no rollback), so this order is what keeps its graph
consistent; on Neo4j the whole function is one transaction. Statements are batched under
the dialect's size cap, and a chunk too long for one statement gets its text appended in
pieces; vectors are set afterwards by node id (see Dialect.set_vectors).

Beside the chunks, each document gets what the search's document-level evidence reads
(search.py): a HAS_TERM link to the SearchTerm of every stem its chunks or title hold
(`count`: occurrences in the chunk texts, for a BM25 over whole documents; `chunks`: the
chunks holding it in text or title, for the coverage floor), its length (`text_terms`) and
chunk count (`text_chunks`, written with the sha256), and with vectors its `centroid`. How
many documents or chunks hold a stem is counted from the links when a search reads them,
so no counter can drift: replacing or removing a document deletes its links first.

A document's collection (who may read it) is on the Document and copied onto each Chunk,
as its title is: a document written with none keeps the stored one, a new one goes to the
default collection.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bot.knowledge.graph.rank import content_stems, words
from bot.knowledge.graph.schema import (
    CENTROID,
    COLLECTION,
    Dialect,
    GraphSchema,
    Statement,
    rendered_bytes,
    run,
    statement_bytes,
)
from bot.knowledge.store import Document
from bot.readers import DEFAULT_COLLECTION

MAX_BATCH = 100  # rows per UNWIND when the server has no size cap


def orphans(schema: GraphSchema) -> str:
    """Delete those of the Persons named $names that have no relationship of any kind left:
    one an existing graph links to something else (a team, a company) stays, and a Person
    this write did not unlink is never looked at. Never DETACH DELETE."""
    # OPTIONAL MATCH + count works on both engines, unlike NOT EXISTS {...}.
    return (
        f"UNWIND $names AS name MATCH (p:{schema.person} {{name: name}}) "
        "OPTIONAL MATCH (p)-[r]-() WITH p, count(r) AS links WHERE links = 0 DELETE p"
    )


def _drop_orphans(tx: Any, schema: GraphSchema, dialect: Dialect, names: list[str]) -> None:
    """Run `orphans` for `names`, batched under the dialect's size cap."""
    query, limit = orphans(schema), dialect.max_statement_bytes
    for batch in _batches(query, {}, "names", names, limit):
        run(tx, dialect, query, {"names": batch}).consume()


def _linked(tx: Any, schema: GraphSchema, dialect: Dialect, doc_id: str, unlink: bool) -> list:
    """Names of the Persons that SPOKE_IN the document (the links deleted if `unlink`)."""
    p, d = schema.person, schema.document
    delete = "DELETE r " if unlink else ""
    query = f"MATCH (p:{p})-[r:SPOKE_IN]->(:{d} {{id: $id}}) {delete}RETURN DISTINCT p.name AS name"
    return [r["name"] for r in run(tx, dialect, query, {"id": doc_id}) if r["name"] is not None]


def _split(text: str, budget: int) -> list[str]:
    """`text` in pieces whose rendered size stays within `budget` bytes (at least 1 char)."""
    pieces, current, size = [], [], 0
    for ch in text:
        cost = len(ch.encode("utf-8")) + (1 if ch in "'\"\\\n\r\t" else 0)
        if current and size + cost > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += cost
    return [*pieces, "".join(current)] if current else pieces or [""]


def _batches(
    query: str, base: dict[str, Any], key: str, rows: list[Any], limit: int | None
) -> Iterator[list[Any]]:
    """Consecutive batches of rows whose statement stays within `limit` bytes."""
    empty = statement_bytes(query, {**base, key: []})
    batch: list[Any] = []
    size = empty
    for row in rows:
        cost = rendered_bytes(row) + 2  # one more list item, as rendered_bytes counts it
        if batch and (len(batch) >= MAX_BATCH or (limit is not None and size + cost > limit)):
            yield batch
            batch, size = [], empty
        batch.append(row)
        size += cost
    if batch:
        yield batch


def term_rows(doc: Document) -> tuple[list[list[Any]], int]:
    """[stem, occurrences in the chunk texts, chunks holding it in text or title] for every
    stem of the document, and how many words its chunk texts hold."""
    title = set(content_stems(words(doc.title)))
    counts: Counter[str] = Counter()
    chunks: Counter[str] = Counter()
    length = 0
    for chunk in doc.chunks:
        found = words(chunk.text)
        length += len(found)
        stems = content_stems(found)
        counts.update(stems)
        chunks.update(set(stems) | title)
    return [[term, counts[term], chunks[term]] for term in sorted(chunks)], length


def centroid(vectors: list[list[float]]) -> list[float] | None:
    """The normalised sum of the vectors made unit length (None if there is nothing)."""
    total = [0.0] * max((len(v) for v in vectors), default=0)
    for vector in vectors:
        norm = math.sqrt(sum(x * x for x in vector))
        for i, x in enumerate(vector if norm else ()):
            total[i] += x / norm
    norm = math.sqrt(sum(x * x for x in total))
    return [x / norm for x in total] if norm else None


def _unlink_terms(tx: Any, schema: GraphSchema, dialect: Dialect, doc_id: str) -> None:
    """Delete the document's HAS_TERM links, and the SearchTerms no document links to."""
    query = (
        f"MATCH (:{schema.document} {{id: $id}})-[h:HAS_TERM]->(t:{schema.term}) DELETE h "
        "WITH DISTINCT t OPTIONAL MATCH (t)<-[o:HAS_TERM]-() "
        "WITH t, count(o) AS holders WHERE holders = 0 DELETE t"
    )
    run(tx, dialect, query, {"id": doc_id}).consume()


def _link_terms(tx: Any, schema: GraphSchema, dialect: Dialect, doc_id: str, rows: list) -> None:
    """Link the document to the SearchTerm of each of its stems (`term_rows`), batched."""
    query = (
        f"MATCH (d:{schema.document} {{id: $id}}) UNWIND $terms AS term "
        f"MERGE (t:{schema.term} {{stem: term[0]}}) "
        "CREATE (d)-[:HAS_TERM {count: term[1], chunks: term[2]}]->(t)"
    )
    base = {"id": doc_id}
    for batch in _batches(query, base, "terms", rows, dialect.max_statement_bytes):
        run(tx, dialect, query, {**base, "terms": batch}).consume()


def _chunk_rows(
    doc: Document, dialect: Dialect, query: str, base: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    """One row per chunk, plus the text pieces that must be appended after creation."""
    rows, rest, limit = [], {}, dialect.max_statement_bytes
    for chunk in doc.chunks:
        row = {"id": f"{doc.id}:{chunk.seq}", "seq": chunk.seq, "speakers": list(chunk.speakers)}
        row["location"] = chunk.location  # "p. 3", a heading: part of the source label
        text = dialect.stored_text(chunk.text)
        if limit is not None:
            room = limit - statement_bytes(query, {**base, "rows": [{**row, "text": ""}]})
            pieces = _split(text, max(64, room))
            row["text"], rest[chunk.seq] = pieces[0], pieces[1:]
        else:
            row["text"] = text
        rows.append(row)
    return rows, rest


def write_document(
    tx: Any,
    schema: GraphSchema,
    dialect: Dialect,
    doc: Document,
    vectors: list[list[float]] | None,
    now: float,
) -> None:
    """Replace `doc`: metadata, chunks, SPOKE_IN links, vectors; sha256 last."""
    d, c, p = schema.document, schema.chunk, schema.person
    base = {"id": doc.id, "title": doc.title, "date": doc.date}
    limit = dialect.max_statement_bytes
    statements: list[Statement] = [
        (
            f"MERGE (d:{d} {{id: $id}}) SET d.title = $title, d.kind = $kind, "
            "d.source = $source, d.date = $date, d.sha256 = '', d.text_chunks = null, "
            f"d.{CENTROID} = null, d.{COLLECTION} = CASE WHEN $collection = '' "
            f"THEN coalesce(d.{COLLECTION}, '{DEFAULT_COLLECTION}') ELSE $collection END",
            {**base, "kind": doc.kind, "source": doc.source, "collection": doc.collection},
        ),
        (f"MATCH (d:{d} {{id: $id}})-[:HAS_CHUNK]->(c:{c}) DETACH DELETE c", {"id": doc.id}),
    ]
    for query, params in statements:
        run(tx, dialect, query, params).consume()
    unlinked = _linked(tx, schema, dialect, doc.id, unlink=True)
    _unlink_terms(tx, schema, dialect, doc.id)

    create = (
        f"MATCH (d:{d} {{id: $id}}) UNWIND $rows AS row "
        f"CREATE (d)-[:HAS_CHUNK]->(c:{c} {{id: row.id}}) SET c.seq = row.seq, "
        f"c.{schema.text} = row.text, c.speakers = row.speakers, c.location = row.location, "
        f"c.title = $title, c.{COLLECTION} = d.{COLLECTION}, "
        f"c.date = $date, c.doc_id = $id RETURN row.seq AS seq, {dialect.node_id} AS node"
    )
    rows, rest = _chunk_rows(doc, dialect, create, base)
    nodes: dict[int, Any] = {}
    for batch in _batches(create, base, "rows", rows, limit):
        for record in run(tx, dialect, create, {**base, "rows": batch}):
            nodes[record["seq"]] = record["node"]
    text = f"c.{schema.text}"
    append = f"MATCH (c:{c}) WHERE {dialect.node_id} = $node SET {text} = {text} + $piece"
    for seq, pieces in rest.items():
        for piece in pieces:
            run(tx, dialect, append, {"node": nodes[seq], "piece": piece}).consume()
    if vectors:
        pairs = [(nodes[chunk.seq], vectors[i]) for i, chunk in enumerate(doc.chunks)]
        for query, params in dialect.set_vectors(schema, pairs):
            run(tx, dialect, query, params).consume()
        if (vector := centroid(vectors)) is not None:
            first = nodes[doc.chunks[0].seq]
            run(tx, dialect, *dialect.set_centroid(schema, first, vector)).consume()
    terms, length = term_rows(doc)
    _link_terms(tx, schema, dialect, doc.id, terms)

    link = (
        f"MATCH (d:{d} {{id: $id}}) UNWIND $people AS person MERGE (p:{p} {{name: person.name}}) "
        "MERGE (p)-[r:SPOKE_IN]->(d) SET r.order = person.order"
    )
    people = [{"name": name, "order": i} for i, name in enumerate(dict.fromkeys(doc.people))]
    for batch in _batches(link, {"id": doc.id}, "people", people, limit):
        run(tx, dialect, link, {"id": doc.id, "people": batch}).consume()
    speakers = set(doc.people)
    _drop_orphans(tx, schema, dialect, [name for name in unlinked if name not in speakers])
    finish = (
        f"MATCH (d:{d} {{id: $id}}) SET d.text_terms = $length, d.text_chunks = $chunks, "
        "d.sha256 = $sha, d.updated_at = $now"
    )
    stats = {"length": length, "chunks": len(doc.chunks)}
    run(tx, dialect, finish, {"id": doc.id, "sha": doc.sha256, "now": now, **stats}).consume()


def remove_document(
    tx: Any, schema: GraphSchema, dialect: Dialect, doc_id: str, now: float
) -> bool:
    """Delete a document, its chunks, SPOKE_IN links and the speakers left unlinked; False
    if it was not stored.

    Marked first (sha256 emptied, updated_at set): on FalkorDB an interrupted removal
    already shows as a new version, and removing the document again finishes it."""
    d, c = schema.document, schema.chunk
    params = {"id": doc_id}
    mark = f"MATCH (d:{d} {{id: $id}}) SET d.sha256 = '', d.updated_at = $now RETURN count(d) AS n"
    if not run(tx, dialect, mark, {**params, "now": now}).single()["n"]:
        return False
    chunks = f"MATCH (d:{d} {{id: $id}})-[:HAS_CHUNK]->(c:{c}) DETACH DELETE c"
    run(tx, dialect, chunks, params).consume()
    speakers = _linked(tx, schema, dialect, doc_id, unlink=False)
    _unlink_terms(tx, schema, dialect, doc_id)
    # DETACH: the SPOKE_IN links go, and whatever else an existing graph links to the
    # document; of its speakers, only those left with no relationship at all go too.
    run(tx, dialect, f"MATCH (d:{d} {{id: $id}}) DETACH DELETE d", params).consume()
    _drop_orphans(tx, schema, dialect, speakers)
    return True


def move_document(
    tx: Any, schema: GraphSchema, dialect: Dialect, doc_id: str, collection: str, now: float
) -> bool:
    """Put a document and its chunks in `collection`; False if it was not stored.

    Marked first, as remove_document does (a new version, its sha256 emptied), then its
    chunks, which the search's legs filter by, then the document with its sha256 back. On
    FalkorDB, which applies each statement at once, an interrupted move has already
    changed the version (no cached answer survives) and reads as an interrupted ingest:
    moving it again finishes it, and the next ingest writes it whole where it was."""
    d, c = schema.document, schema.chunk
    params = {"id": doc_id, "collection": collection}
    mark = (
        f"MATCH (d:{d} {{id: $id}}) WITH d, coalesce(d.sha256, '') AS sha "
        "SET d.sha256 = '', d.updated_at = $now RETURN sha"
    )
    marked = run(tx, dialect, mark, {"id": doc_id, "now": now}).data()
    if not marked:
        return False
    chunks = f"MATCH (:{d} {{id: $id}})-[:HAS_CHUNK]->(c:{c}) SET c.{COLLECTION} = $collection"
    run(tx, dialect, chunks, params).consume()
    finish = f"MATCH (d:{d} {{id: $id}}) SET d.{COLLECTION} = $collection, d.sha256 = $sha"
    run(tx, dialect, finish, {**params, "sha": marked[0]["sha"]}).consume()
    return True
