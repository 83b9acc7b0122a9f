"""What a search knows about whole documents: BM25 over each document and the coverage
floor's share, from the statistics ingest writes (write.py), and the cosines of the hybrid.

Two statements in one read: the totals (documents, chunks, words) with, for each stem of
the question, how many documents hold it in their texts and how many chunks hold it in text
or title; then, weighted by those numbers, every document holding one of the stems scored
on the server, of which only the best come back. Idfs are FTS5's (relevance.idf), as in
the research the weights were fitted with. A search limited to some collections counts
only their documents, in both statements: its numbers are those of a graph holding only
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.knowledge.fts_query import query_words
from bot.knowledge.graph.rank import K1, B, content_stems
from bot.knowledge.graph.schema import (
    Dialect,
    GraphSchema,
    Scope,
    in_scope,
    run,
    scoped,
    statement_bytes,
)
from bot.knowledge.relevance import idf

MAX_SCORED = 200  # documents whose whole-document BM25 comes back, best first


@dataclass(frozen=True)
class Evidence:
    """Document-level evidence for one question."""

    bm25: dict[str, float] = field(default_factory=dict)  # id -> BM25 ÷ the best document's
    coverage: float | None = None  # the best document's share of the question's idf; None:
    # no statistics to judge by (a graph ingested before them, or by someone else)


def question_stems(question: str) -> list[str]:
    """The stems the statistics are read for: the SQLite store's query words (stopwords and
    request words such as "discuss" or "summarise" left out), stemmed as rank.py stems."""
    return list(dict.fromkeys(content_stems(query_words(question))))


def totals_query(schema: GraphSchema, limited: bool = False) -> str:
    """Totals over the documents that carry statistics, and per stem its holders (`limited`:
    of the documents in $collections, both)."""
    documents = f"AND {in_scope('d')} " if limited else ""
    holders, chunks, counted = "()", "h.chunks", "h.count > 0"
    if limited:  # holders filtered as they are summed: a filter in the OPTIONAL MATCH
        # would have FalkorDB expand every document's links rather than the stem's
        holders = "(o)"
        chunks = f"CASE WHEN {in_scope('o')} THEN h.chunks ELSE 0 END"
        counted = f"h.count > 0 AND {in_scope('o')}"
    return (
        f"MATCH (d:{schema.document}) WHERE d.text_chunks IS NOT NULL {documents}"
        "WITH count(d) AS documents, sum(d.text_chunks) AS chunks, sum(d.text_terms) AS words "
        f"UNWIND $stems AS stem OPTIONAL MATCH (:{schema.term} {{stem: stem}})<-[h:HAS_TERM]-"
        f"{holders} "
        f"RETURN stem, documents, chunks, words, sum({chunks}) AS in_chunks, "
        f"sum(CASE WHEN {counted} THEN 1 ELSE 0 END) AS in_documents"
    )


def scores_query(schema: GraphSchema, limited: bool = False) -> str:
    """Per document holding a stem: the idf it covers, and its BM25 (best first); `limited`:
    only the documents in $collections."""
    length = f"(1 - {B} + {B} * d.text_terms / $average)"
    # After a WITH: in the MATCH, FalkorDB would start from every document, not the stem.
    readable = f"WITH i, h, d WHERE {in_scope('d')} " if limited else ""
    return (
        "UNWIND range(0, size($stems) - 1) AS i "
        f"MATCH (:{schema.term} {{stem: $stems[i]}})<-[h:HAS_TERM]-(d:{schema.document}) "
        f"{readable}WITH d, sum($cover[i]) AS covered, "
        f"sum($weight[i] * h.count * {K1 + 1} / (h.count + {K1} * {length})) AS score "
        f"ORDER BY score DESC RETURN max(covered) AS covered, max(score) AS best, "
        f"collect([d.id, score])[..{MAX_SCORED}] AS scores"
    )


def _fitting(query: str, stems: list[str], dialect: Dialect, scope: Scope) -> list[str]:
    """The stems, the last ones left out until the scores statement fits the server's cap
    (a pasted essay; the coverage then judges the words kept)."""
    limit = dialect.max_statement_bytes
    while stems and limit is not None:
        params = {"stems": stems, "cover": [0.0] * len(stems), "weight": [0.0] * len(stems)}
        fitted = scoped((query, {**params, "average": 0.0}), dialect, scope)
        if statement_bytes(*fitted) <= limit:
            break
        stems = stems[:-1]
    return stems


def read_evidence(
    tx: Any, schema: GraphSchema, dialect: Dialect, question: str, scope: Scope = None
) -> Evidence:
    """BM25 over whole documents (the best MAX_SCORED) and the coverage of `question`, over
    the documents in `scope` (None: all)."""
    limited = scope is not None
    scores = scores_query(schema, limited)
    stems = _fitting(scores, question_stems(question), dialect, scope)
    if not stems:
        return Evidence()
    totals = scoped((totals_query(schema, limited), {"stems": stems}), dialect, scope)
    rows = run(tx, dialect, *totals).data()
    documents = int(rows[0]["documents"] or 0) if rows else 0
    if not documents:
        return Evidence()
    chunks, words = int(rows[0]["chunks"] or 0), float(rows[0]["words"] or 0)
    found = {str(r["stem"]): r for r in rows}
    cover = [idf(chunks, int(found[s]["in_chunks"] or 0)) for s in stems]
    weight = [idf(documents, int(found[s]["in_documents"] or 0)) for s in stems]
    params = {"stems": stems, "cover": cover, "weight": weight}
    average = {**params, "average": words / documents or 1.0}
    result = run(tx, dialect, *scoped((scores, average), dialect, scope)).data()
    row = result[0] if result else {}
    best = float(row.get("best") or 0.0)
    bm25 = {str(d): float(s) / best for d, s in row.get("scores") or () if best > 0}
    return Evidence(bm25=bm25, coverage=float(row.get("covered") or 0.0) / sum(cover))


def similarities(
    tx: Any,
    schema: GraphSchema,
    dialect: Dialect,
    nodes: Sequence[Any],
    vector: list[float],
    scope: Scope = None,
) -> dict[Any, tuple[float, float]]:
    """node -> (cosine of the chunk, cosine of its document's centroid) to `vector`; 0.0
    where a vector is missing (and for a chunk outside `scope`)."""
    if not nodes:
        return {}
    statement = dialect.similarities(schema, list(nodes), vector, scope is not None)
    rows = run(tx, dialect, *scoped(statement, dialect, scope)).data()
    return {r["node"]: (float(r["chunk"] or 0.0), float(r["document"] or 0.0)) for r in rows}
