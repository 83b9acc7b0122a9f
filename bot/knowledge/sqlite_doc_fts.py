"""The document-level FTS5 table of the SQLite store: one row per document, all its chunk
texts, kept in step with the chunks by the transactions that write them.

It answers two questions no chunk can: how well a whole document matches (its own BM25,
a ranking signal) and which documents contain a word at all (the relevance floor). The
title is a second column: the floor counts a title word as present, the BM25 score
weighs it 0. Contentless (the text is already in `chunks`), so a row is removed with the
exact values it was indexed with, rebuilt from the chunks before they change, as the
chunk index does. Its rowid is the pk of the document's first chunk, which the joins use.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from bot.errors import KnowledgeUnavailable
from bot.knowledge.sqlite_scope import TOKEN_SQL

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS doc_fts USING fts5(
    text, title, collection, content='', tokenize='porter unicode61 remove_diacritics 2');
"""
FILLED_KEY = "doc_fts"  # in meta once every document stored before the table was indexed
_ROW = f"""
SELECT c.pk, c.text, d.title, {TOKEN_SQL.format(column="d.collection")}
FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ? ORDER BY c.seq
"""


def _row(conn: sqlite3.Connection, doc_id: str) -> tuple[int, str, str, str] | None:
    """(rowid, text, title, collection token) of a document as the table holds it; None
    without chunks."""
    rows = conn.execute(_ROW, (doc_id,)).fetchall()
    if not rows:
        return None
    text = "\n".join(row[1] for row in rows)
    return min(row[0] for row in rows), text, rows[0][2], rows[0][3]


def index(conn: sqlite3.Connection, doc_id: str) -> None:
    """Add a document's row, after its chunks, title and collection are written."""
    row = _row(conn, doc_id)
    if row is not None:
        conn.execute(
            "INSERT INTO doc_fts (rowid, text, title, collection) VALUES (?, ?, ?, ?)", row
        )


def unindex(conn: sqlite3.Connection, doc_id: str) -> None:
    """Remove a document's row, before its chunks, title or collection change."""
    row = _row(conn, doc_id)
    if row is not None:
        conn.execute(
            "INSERT INTO doc_fts (doc_fts, rowid, text, title, collection) "
            "VALUES ('delete', ?, ?, ?, ?)",
            row,
        )


def filled(conn: sqlite3.Connection) -> bool:
    """Whether every stored document has its row (false in a store made before the table)."""
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (FILLED_KEY,)).fetchone() is not None


def fill(conn: sqlite3.Connection) -> int:
    """Index every stored document once, inside a write transaction; how many were indexed."""
    if filled(conn):
        return 0
    conn.execute("INSERT INTO doc_fts (doc_fts) VALUES ('delete-all')")
    doc_ids = [doc_id for (doc_id,) in conn.execute("SELECT id FROM documents")]
    for doc_id in doc_ids:
        index(conn, doc_id)
    conn.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (FILLED_KEY,))
    return len(doc_ids)


def fill_once(
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
    changed: Callable[[sqlite3.Connection], None],
) -> None:
    """`fill` in a write transaction of its own, marking the store `changed` (rankings
    change: cached answers are stale). Other workers wait for it, then find it filled; one
    that waits too long goes on without (its searches see the index once it is filled)."""
    try:
        with transaction() as conn:
            if fill(conn):
                changed(conn)
    except KnowledgeUnavailable as exc:
        logger.warning("document index not filled here (%s); another process may be at it", exc)
