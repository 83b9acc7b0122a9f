"""The SQLite history file: its schema, and the pooled connections its queries run on."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.sqlite_pool import (
    DEFAULT_SIZE,
    SqlitePool,
    Turns,
    begin_immediate,
    end_write,
    use_wal,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    sender TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]',
    message_sid TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (message_sid, role)
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation, id);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (sender);
CREATE TABLE IF NOT EXISTS deliveries (
    message_sid TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    state TEXT NOT NULL,
    reply TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_conversation ON deliveries (conversation);
-- Pruning walks these from the oldest row: ids past their window, reply text past its own.
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (updated_at);
CREATE INDEX IF NOT EXISTS deliveries_with_reply ON deliveries (updated_at) WHERE reply <> '';
CREATE TABLE IF NOT EXISTS notices (
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (sender, kind)
);
CREATE TABLE IF NOT EXISTS usage (
    sender TEXT NOT NULL,
    day TEXT NOT NULL,
    questions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, day)
);
CREATE INDEX IF NOT EXISTS usage_by_day ON usage (day);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    conversation TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- One row per answered question, never pruned: how it was answered and how fast. `forget`
-- anonymises the sender and blanks the (normalised) question.
CREATE TABLE IF NOT EXISTS answers (
    message_sid TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    fallback_reason TEXT NOT NULL DEFAULT '',
    latency_ms REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_time ON answers (created_at);
CREATE INDEX IF NOT EXISTS answers_by_sender ON answers (sender);
-- First-turn answers keyed by normalised question and knowledge version.
CREATE TABLE IF NOT EXISTS answer_cache (
    question TEXT NOT NULL,
    knowledge_version TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (question, knowledge_version)
);
CREATE INDEX IF NOT EXISTS answer_cache_by_creator ON answer_cache (created_by);
CREATE INDEX IF NOT EXISTS answer_cache_by_time ON answer_cache (created_at);
"""

# Columns added after the first release: (table, column, definition). Added when missing,
# so history files written by an older version keep working.
ADDED_COLUMNS = (
    ("feedback", "rating", "TEXT NOT NULL DEFAULT ''"),
    ("feedback", "message_sid", "TEXT NOT NULL DEFAULT ''"),
    ("feedback", "question", "TEXT NOT NULL DEFAULT ''"),
    ("feedback", "answer", "TEXT NOT NULL DEFAULT ''"),
    ("messages", "readers", "TEXT NOT NULL DEFAULT ''"),
)
LATE_INDEXES = "CREATE INDEX IF NOT EXISTS feedback_by_sender ON feedback (sender);"
# How long an operation given no deadline may wait for a pooled connection: as long as
# SQLite's default busy timeout would let it wait for the file lock.
WAIT_SECONDS = 5.0


def _set_up(db: sqlite3.Connection) -> None:
    """Each new connection: WAL, so readers never wait for the writer."""
    use_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")


class SqliteDatabase:
    """One history file on a bounded pool of connections (WAL for concurrency): write
    transactions and reads, each bounded by its deadline."""

    def __init__(self, path: str, pool_size: int = DEFAULT_SIZE) -> None:
        self.path = path
        # The knowledge version this process last filed answers under: the other versions'
        # cache entries were dropped then (sqlite_team.file_answer).
        self.cache_version = ""
        # ":memory:" is a new, empty database per connection: one connection keeps it one.
        self._pool_size = 1 if path == ":memory:" else pool_size
        self.writers = Turns()
        self.pool = self._new_pool()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.pool.connection(Deadline(WAIT_SECONDS)) as db:
                # executescript commits on its own, so it runs outside tx.
                db.executescript(SCHEMA)
                self._add_columns(db)
        except sqlite3.Error as exc:
            self.pool.close()
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def _add_columns(self, db: sqlite3.Connection) -> None:
        """Bring an older history file up to date (several processes may race here)."""
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, column, definition in ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            db.execute(LATE_INDEXES)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _new_pool(self) -> SqlitePool:
        return SqlitePool(self.path, self._pool_size, _set_up)

    @contextmanager
    def tx(self, deadline: Deadline) -> Iterator[sqlite3.Connection]:
        """One write transaction; waiting for a connection and the file lock is bounded by
        the deadline."""
        try:
            # This process's writers one at a time, in arrival order (sqlite_pool.Turns).
            with self.writers.turn(deadline), self.pool.connection(deadline) as db:
                begin_immediate(db, deadline)
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                finally:
                    end_write(db)
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def read(self, sql: str, params: tuple = (), deadline: Deadline | None = None) -> list[tuple]:
        """All rows of one query; waiting for a connection is bounded by the deadline."""
        try:
            with self.pool.connection(deadline or Deadline(WAIT_SECONDS)) as db:
                return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def close(self) -> None:
        """Close the connections (those in use when returned); later calls open new ones."""
        pool, self.pool = self.pool, self._new_pool()
        pool.close()

    def after_fork(self) -> None:
        """In a gunicorn worker: leave the master's connections alone, open our own."""
        self.pool.after_fork()


@dataclass
class SqlitePart:
    """What each part of the SQLite store (one per concern) runs on."""

    db: SqliteDatabase
    clock: Callable[[], float]
