"""How the graph store searches: the statements of one search and the passages they give.

Pure functions over a transaction-like `tx` and plain rows, shared by both dialects. Each
leg runs in its own transaction, so one that fails leaves the other's hits; the document
evidence and the cosines are read after them, and ranking.py ranks the lot. A search
limited to some collections (a `Scope`) filters inside every one of these statements,
before any ORDER BY or LIMIT, and takes every statistic from their documents alone: it
ranks as a graph holding only them would.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.evidence import Evidence, read_evidence, similarities
from bot.knowledge.graph.rank import CANDIDATE_ROWS, bm25
from bot.knowledge.graph.ranking import Ranked, hybrid, lexical
from bot.knowledge.graph.schema import (
    Dialect,
    GraphSchema,
    Scope,
    SearchIndex,
    Statement,
    hits_query,
    run,
    scoped,
    vector_literal,
)
from bot.knowledge.graph.text import clip_bytes, people_text, without_people_words
from bot.knowledge.relevance import covered
from bot.models import Passage

logger = logging.getLogger(__name__)

CUSTOM_QUESTION_BYTES = 1500  # FalkorDB pastes parameters into a ~4 KB buffer
# Neighbours one vector query asks for at most: past indexes.MAX_STALE tombstones and more.
MAX_VECTOR_FETCH = 4000
FULLTEXT, VECTOR = "full-text", "vector"  # the legs
Read = Callable[[Callable[[Any], Any]], Any]  # runs work in a read transaction


def source_label(title: str, date: str, location: str = "") -> str:
    """The human label users see: "Title (2026-03-04)" or "Title", then ", p. 3" or
    ", Budget" for a chunk of a PDF page or under a Word heading."""
    label = f"{title} ({date})" if date else title
    return f"{label}, {location}" if label and location else label


def fulltext_hits(
    tx: Any, schema: GraphSchema, dialect: Dialect, query: str, limit: int, scope: Scope = None
) -> list[dict]:
    """The full-text leg's rows, best first, at most `limit` (of chunks in `scope`)."""
    limited = scope is not None
    frequencies = None
    if counting := dialect.term_frequencies(schema, query, limited):
        frequencies = run(tx, dialect, *scoped(counting, dialect, scope)).data()
    text_query = dialect.fulltext_query(query, frequencies)
    if not text_query:
        return []
    fetch = CANDIDATE_ROWS if dialect.rerank else limit
    # An engine's own cap would apply before the filter: a limited search asks for all.
    call, params = dialect.fulltext_call(schema, text_query, None if limited else fetch)
    hits = hits_query(schema, dialect, call, "DESC", fetch, limited)
    rows = run(tx, dialect, *scoped((hits, params), dialect, scope)).data()
    if dialect.rerank and frequencies and rows:
        rows = _ranked(frequencies, rows)[:limit]
    return rows


def vector_hits(
    read: Read,
    schema: GraphSchema,
    dialect: Dialect,
    index: SearchIndex,
    vector: list[float],
    limit: int,
    scope: Scope = None,
) -> list[dict]:
    """The vector leg's rows, best first, at most `limit` (of chunks in `scope`), each query
    run by `read`.

    A FalkorDB index counts tombstones among the k nearest (see dialect_falkordb.py): ask
    for as many more neighbours as its stale share, and four times more while the answer
    stays short of what the index holds (tombstones crowd near the chunks that replaced
    them). Neo4j lists no such counts, so its leg is one query of `limit`. The neighbours
    outside `scope` are dropped before the LIMIT, so a limited leg grows the same way
    until `limit` rows come back or every neighbour was asked for (Neo4j: up to
    MAX_VECTOR_FETCH, not knowing how many its index holds)."""
    limited = scope is not None
    counted = index.added > 0 or not limited  # Neo4j's zeros end an unlimited leg at once
    wanted = min(limit, index.entries) if counted else limit
    ceiling = min(MAX_VECTOR_FETCH, index.added) if counted else MAX_VECTOR_FETCH
    fetch = max(limit, -(-limit * index.added // max(index.entries, 1)))
    while True:
        fetch = min(fetch, MAX_VECTOR_FETCH)
        call, params = dialect.vector_call(schema, vector, fetch)
        hits = hits_query(schema, dialect, call, dialect.vector_order, limit, limited)
        query, params = scoped((hits, params), dialect, scope)
        rows = read(lambda tx, q=query, p=params: run(tx, dialect, q, p).data())
        if len(rows) >= wanted or fetch >= ceiling:
            return rows
        fetch *= 4


def each_leg(legs: dict[str, Callable[[], list[dict]]]) -> dict[str, list[dict]]:
    """Every leg's rows; a leg that fails is logged and left out while another answers."""
    if not legs:
        raise KnowledgeUnavailable("no search index of the graph is online")
    results, failures = {}, []
    for name, leg in legs.items():
        try:
            results[name] = leg()
        except KnowledgeUnavailable as exc:
            failures.append(exc)
            logger.warning("graph %s search failed (%s)", name, exc)
    if not results:
        raise failures[0]
    return results


def _ranked(frequencies: list[dict], rows: list[dict]) -> list[dict]:
    """Full-text candidates in BM25 order, each with its BM25 as `score` (see rank.py)."""
    counts = {str(r["term"]): int(r["frequency"]) for r in frequencies}
    chunks = max([int(r["chunks"]) for r in frequencies] + [len(rows)])
    return [{**row, "score": score} for row, score in bm25(list(counts), counts, chunks, rows)]


def ranked_passages(
    read: Read,
    schema: GraphSchema,
    dialect: Dialect,
    question: str,
    results: dict[str, list[dict]],
    vector: list[float] | None,
    floor: bool = False,
    scope: Scope = None,
) -> list[Passage]:
    """The legs' rows ranked with their documents' evidence (ranking.py), best first; none
    when `floor` is on and the knowledge does not cover the question (relevance.py).
    Evidence and cosines are read for the documents in `scope` alone."""
    text_rows = [r for r in results.get(FULLTEXT, []) if r.get("text")]
    vector_rows = [r for r in results.get(VECTOR, []) if r.get("text")]
    evidence = _evidence(read, schema, dialect, question, scope)
    share = evidence.coverage if floor else None
    ranked: Ranked | None = None
    if vector is not None and VECTOR in results:
        rows = text_rows + vector_rows
        nodes = list(dict.fromkeys(r["node"] for r in rows if r.get("node") is not None))
        try:
            by_node = read(lambda tx: similarities(tx, schema, dialect, nodes, vector, scope))
        except KnowledgeUnavailable as exc:  # ranked as if the vector leg had failed
            logger.warning("graph cosines failed (%s): full-text ranking only", exc)
        else:
            cosines = {str(r["chunk_id"]): by_node.get(r.get("node"), (0.0, 0.0)) for r in rows}
            best = max((chunk for chunk, _ in cosines.values()), default=0.0)
            if not covered(share, best):
                return []
            ranked = hybrid(text_rows, vector_rows, cosines, evidence.bm25)
    if ranked is None:
        if not covered(share):
            return []
        ranked = lexical(text_rows, evidence.bm25)
    return [_passage(row, score, dialect) for row, score in ranked]


def _evidence(
    read: Read, schema: GraphSchema, dialect: Dialect, question: str, scope: Scope
) -> Evidence:
    """The question's document evidence; none (no floor either) when it cannot be read.
    A people question is judged by what it asks about, not by "who attended"."""
    words = without_people_words(question)
    try:
        return read(lambda tx: read_evidence(tx, schema, dialect, words, scope))
    except KnowledgeUnavailable as exc:
        logger.warning("graph document evidence failed (%s): chunks ranked alone", exc)
        return Evidence()


def _passage(row: dict, score: float, dialect: Dialect) -> Passage:
    title, date = str(row.get("title") or ""), str(row.get("date") or "")
    return Passage(
        text=dialect.shown_text(str(row.get("text") or "")),
        source=source_label(title, date, str(row.get("location") or ""))
        or str(row.get("document_id") or "graph"),
        score=score,
        document_id=str(row.get("document_id") or ""),
        chunk_id=str(row.get("chunk_id") or ""),
        title=title,
        date=date,
        speakers=tuple(str(s) for s in row.get("speakers") or ()),
    )


def people_passage(top: Passage, people: list[str], score: float) -> Passage:
    """Who took part in `top`'s document, as a passage naming that document."""
    return Passage(
        text=people_text(top.title or top.source, top.date, people),
        source=top.source,
        score=score,
        document_id=top.document_id,
        title=top.title,
        date=top.date,
        speakers=tuple(people),
    )


def custom_statement(
    retrieval_query: str,
    dialect: Dialect,
    query: str,
    k: int,
    vector: list[float] | None,
    scope: Scope = None,
) -> Statement:
    """The configured retrieval query and its parameters ($question, $query, $k, $embedding,
    and $collections for a search limited to some)."""
    if scope is not None and not re.search(r"\$collections\b", retrieval_query):
        # Run unfiltered, it would hand any sender any collection's passages.
        raise KnowledgeUnavailable(
            "neo4j.retrieval_query must filter by $collections "
            "when knowledge.collections is configured"
        )
    params: dict[str, Any] = {
        "question": clip_bytes(query, CUSTOM_QUESTION_BYTES),
        "query": dialect.fulltext_query(query),
        "k": k,
    }
    if "$embedding" in retrieval_query:
        if dialect.max_statement_bytes is None:
            params["embedding"] = vector
        else:  # our own floats, written as a literal: no parameter could carry them
            literal = vector_literal(vector) if vector is not None else "null"
            retrieval_query = re.sub(r"\$embedding\b", literal, retrieval_query)
    if scope is not None:
        params["collections"] = list(scope)
    return retrieval_query, params


def custom_passages(rows: list[dict], dialect: Dialect, k: int) -> list[Passage]:
    """Rows of the configured query (text, source, score, ...) as passages, best first."""
    try:
        passages = [
            Passage(
                text=dialect.shown_text(str(row["text"] or "")),
                source=str(row["source"] or ""),
                score=float(row["score"] or 0.0),
                document_id=str(row.get("document_id") or ""),
                chunk_id=str(row.get("chunk_id") or ""),
                title=str(row.get("title") or ""),
                date=str(row.get("date") or ""),
            )
            for row in rows
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeUnavailable(
            f"neo4j.retrieval_query must RETURN text, source and score ({exc!r})"
        ) from None
    return sorted((p for p in passages if p.text), key=lambda p: -p.score)[:k]
