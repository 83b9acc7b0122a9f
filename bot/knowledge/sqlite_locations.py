"""Where a chunk of a paged or sectioned file is ("p. 3", a Word heading), for its source
label: a side table of the SQLite store with a row per located chunk, gone with its chunk
(as chunk_vectors), so stores made before it need no migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.knowledge.store import Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_locations (pk INTEGER PRIMARY KEY, location TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS chunk_locations_gone AFTER DELETE ON chunks
BEGIN DELETE FROM chunk_locations WHERE pk = old.pk; END;
"""


def write(conn: sqlite3.Connection, doc: Document) -> None:
    """Record the locations of `doc`'s chunks, once they are inserted."""
    conn.executemany(
        "INSERT OR REPLACE INTO chunk_locations (pk, location) "
        "SELECT pk, ? FROM chunks WHERE id = ?",
        [(c.location, f"{doc.id}:{c.seq}") for c in doc.chunks if c.location],
    )


def read(conn: sqlite3.Connection, chunk_ids: Sequence[str]) -> dict[str, str]:
    """Chunk id -> location, for those of these chunks that have one."""
    if not chunk_ids:
        return {}
    marks = ",".join("?" * len(chunk_ids))
    return dict(
        conn.execute(
            "SELECT c.id, l.location FROM chunk_locations l JOIN chunks c ON c.pk = l.pk "
            f"WHERE c.id IN ({marks})",
            list(chunk_ids),
        ).fetchall()
    )
