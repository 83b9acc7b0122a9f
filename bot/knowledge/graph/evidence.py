"""What a search knows about whole documents: BM25 over each document and the coverage
floor's share, from the statistics ingest writes (write.py), and the cosines of the hybrid.

Two statements in one read: the totals (documents, chunks, words) with, for each stem of
the question, how many documents hold it in their texts and how many chunks hold it in text
or title; then, weighted by those numbers, every document holding one of the stems scored
on the server, of which only the best come back. Idfs are FTS5's (relevance.idf), as in
the research the weights were fitted with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.knowledge.fts_query import query_words
from bot.knowledge.graph.rank import K1, B, content_stems
from bot.knowledge.graph.schema import Dialect, GraphSchema, run, statement_bytes
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


def totals_query(schema: GraphSchema) -> str:
    """Totals over the documents that carry statistics, and per stem its holders."""
    return (
        f"MATCH (d:{schema.document}) WHERE d.text_chunks IS NOT NULL "
        "WITH count(d) AS documents, sum(d.text_chunks) AS chunks, sum(d.text_terms) AS words "
        f"UNWIND $stems AS stem OPTIONAL MATCH (:{schema.term} {{stem: stem}})<-[h:HAS_TERM]-() "
        "RETURN stem, documents, chunks, words, sum(h.chunks) AS in_chunks, "
        "sum(CASE WHEN h.count > 0 THEN 1 ELSE 0 END) AS in_documents"
    )


def scores_query(schema: GraphSchema) -> str:
    """Per document holding a stem: the idf it covers, and its BM25 (best first)."""
    length = f"(1 - {B} + {B} * d.text_terms / $average)"
    return (
        "UNWIND range(0, size($stems) - 1) AS i "
        f"MATCH (:{schema.term} {{stem: $stems[i]}})<-[h:HAS_TERM]-(d:{schema.document}) "
        "WITH d, sum($cover[i]) AS covered, "
        f"sum($weight[i] * h.count * {K1 + 1} / (h.count + {K1} * {length})) AS score "
        f"ORDER BY score DESC RETURN max(covered) AS covered, max(score) AS best, "
        f"collect([d.id, score])[..{MAX_SCORED}] AS scores"
    )


def _fitting(query: str, stems: list[str], dialect: Dialect) -> list[str]:
    """The stems, the last ones left out until the scores statement fits the server's cap
    (a pasted essay; the coverage then judges the words kept)."""
    limit = dialect.max_statement_bytes
    while stems and limit is not None:
        params = {"stems": stems, "cover": [0.0] * len(stems), "weight": [0.0] * len(stems)}
        if statement_bytes(query, {**params, "average": 0.0}) <= limit:
            break
        stems = stems[:-1]
    return stems


def read_evidence(tx: Any, schema: GraphSchema, dialect: Dialect, question: str) -> Evidence:
    """BM25 over whole documents (the best MAX_SCORED) and the coverage of `question`."""
    scores = scores_query(schema)
    stems = _fitting(scores, question_stems(question), dialect)
    if not stems:
        return Evidence()
    rows = run(tx, dialect, totals_query(schema), {"stems": stems}).data()
    documents = int(rows[0]["documents"] or 0) if rows else 0
    if not documents:
        return Evidence()
    chunks, words = int(rows[0]["chunks"] or 0), float(rows[0]["words"] or 0)
    found = {str(r["stem"]): r for r in rows}
    cover = [idf(chunks, int(found[s]["in_chunks"] or 0)) for s in stems]
    weight = [idf(documents, int(found[s]["in_documents"] or 0)) for s in stems]
    params = {"stems": stems, "cover": cover, "weight": weight}
    result = run(tx, dialect, scores, {**params, "average": words / documents or 1.0}).data()
    row = result[0] if result else {}
    best = float(row.get("best") or 0.0)
    bm25 = {str(d): float(s) / best for d, s in row.get("scores") or () if best > 0}
    return Evidence(bm25=bm25, coverage=float(row.get("covered") or 0.0) / sum(cover))


def similarities(
    tx: Any, schema: GraphSchema, dialect: Dialect, nodes: Sequence[Any], vector: list[float]
) -> dict[Any, tuple[float, float]]:
    """node -> (cosine of the chunk, cosine of its document's centroid) to `vector`; 0.0
    where a vector is missing."""
    if not nodes:
        return {}
    rows = run(tx, dialect, *dialect.similarities(schema, list(nodes), vector)).data()
    return {r["node"]: (float(r["chunk"] or 0.0), float(r["document"] or 0.0)) for r in rows}
