"""Conversation history on SQLite: the embedded default when no DATABASE_URL is set."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.deadline import Deadline
from bot.history.sqlite_team import SqliteTeamQueries
from bot.history.store import (
    STALE_CLAIM_SECONDS,
    AnswerRecord,
    Delivery,
    HistoryUnavailable,
    anonymous_key,
    normalise_question,
    utc_day,
)
from bot.models import Turn

logger = logging.getLogger(__name__)

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
)
LATE_INDEXES = "CREATE INDEX IF NOT EXISTS feedback_by_sender ON feedback (sender);"


class SqliteHistoryStore(SqliteTeamQueries):
    """HistoryStore on one SQLite file, one connection per thread (WAL for concurrency)."""

    backend = "sqlite"

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # executescript commits on its own, so it runs outside _tx.
            self._connection().executescript(SCHEMA)
            self._add_columns()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def _add_columns(self) -> None:
        """Bring an older history file up to date (several processes may race here)."""
        db = self._connection()
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

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) where they matter.
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _tx(self, deadline: Deadline) -> Iterator[sqlite3.Connection]:
        """One write transaction; waiting for the file lock is bounded by the deadline."""
        try:
            db = self._connection()
            db.execute(f"PRAGMA busy_timeout = {max(1, int(deadline.remaining() * 1000))}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see HistoryStore.claim)."""
        now = self._clock()
        with self._tx(deadline) as db:
            row = db.execute(
                "SELECT state, reply, updated_at FROM deliveries WHERE message_sid = ?",
                (message_sid,),
            ).fetchone()
            if row is None or (row[0] == "pending" and now - row[2] > STALE_CLAIM_SECONDS):
                db.execute(
                    "INSERT OR REPLACE INTO deliveries (message_sid, conversation, state, reply,"
                    " updated_at) VALUES (?, ?, 'pending', '', ?)",
                    (message_sid, conversation, now),
                )
                return Delivery("new")
        return Delivery(row[0], row[1])

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Mark a delivery done with the reply it got."""
        with self._tx(deadline) as db:
            db.execute(
                "UPDATE deliveries SET state = 'done', reply = ?, updated_at = ?"
                " WHERE message_sid = ?",
                (reply, self._clock(), message_sid),
            )

    def release(self, message_sid: str) -> None:
        """Forget an unfinished claim."""
        with self._tx(Deadline(2)) as db:
            db.execute(
                "DELETE FROM deliveries WHERE message_sid = ? AND state = 'pending'",
                (message_sid,),
            )

    def delivery(self, message_sid: str, deadline: Deadline) -> Delivery | None:
        """The current state of a delivery."""
        rows = self._read(
            "SELECT state, reply FROM deliveries WHERE message_sid = ?", (message_sid,)
        )
        return Delivery(rows[0][0], rows[0][1]) if rows else None

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        if limit <= 0:
            return []
        rows = self._read(
            "SELECT role, text, created_at FROM messages WHERE conversation = ?"
            " ORDER BY id DESC LIMIT ?",
            (conversation, limit),
        )
        return [Turn(role, text, created_at) for role, text, created_at in reversed(rows)]

    def append_exchange(
        self,
        conversation: str,
        sender: str,
        message_sid: str,
        question: str,
        answer: str,
        sources: tuple[str, ...],
        keep: int,
        deadline: Deadline,
        record: AnswerRecord | None = None,
    ) -> None:
        """Log, store both turns and count the question in one transaction, then prune."""
        now = self._clock()
        record = record or AnswerRecord()
        insert = (
            "INSERT OR IGNORE INTO messages (conversation, sender, role, text, sources,"
            " message_sid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        log = (
            message_sid,
            sender,
            normalise_question(question),
            record.kind,
            record.backend,
            record.fallback_reason,
            record.latency_ms,
            now,
        )
        with self._tx(deadline) as db:
            # The answers log is never pruned, so it knows every MessageSid ever answered:
            # a redelivered exchange stores and counts nothing, even after pruning.
            if not db.execute(
                "INSERT OR IGNORE INTO answers (message_sid, sender, question, kind, backend,"
                " fallback_reason, latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                log,
            ).rowcount:
                return
            db.execute(insert, (conversation, sender, "user", question, "[]", message_sid, now))
            db.execute(
                insert,
                (conversation, sender, "assistant", answer, json.dumps(sources), message_sid, now),
            )
            db.execute(
                "INSERT INTO usage (sender, day, questions) VALUES (?, ?, 1)"
                " ON CONFLICT (sender, day) DO UPDATE SET questions = questions + 1",
                (sender, utc_day(now)),
            )
            db.execute(
                "DELETE FROM messages WHERE conversation = ? AND id NOT IN"
                " (SELECT id FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?)",
                (conversation, conversation, max(0, keep)),
            )

    def last_sources(self, conversation: str, deadline: Deadline) -> tuple[str, ...] | None:
        """Sources stored with the conversation's latest answer."""
        rows = self._read(
            "SELECT sources FROM messages WHERE conversation = ? AND role = 'assistant'"
            " ORDER BY id DESC LIMIT 1",
            (conversation,),
        )
        return tuple(json.loads(rows[0][0])) if rows else None

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Delete one conversation's turns."""
        with self._tx(deadline) as db:
            return db.execute(
                "DELETE FROM messages WHERE conversation = ?", (conversation,)
            ).rowcount

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, deliveries (they hold reply text), notices, feedback and
        cache entries; their counters and answers log rows stay, anonymised."""
        anonymous = anonymous_key()
        with self._tx(Deadline(10)) as db:
            gone = sum(
                db.execute(sql, (sender,)).rowcount
                for sql in (
                    "DELETE FROM messages WHERE sender = ?",
                    "DELETE FROM deliveries WHERE conversation = ?",
                    "DELETE FROM feedback WHERE sender = ?",
                    "DELETE FROM answer_cache WHERE created_by = ?",
                )
            )
            db.execute("DELETE FROM notices WHERE sender = ?", (sender,))
            db.execute("UPDATE usage SET sender = ? WHERE sender = ?", (anonymous, sender))
            db.execute(
                "UPDATE answers SET sender = ?, question = '' WHERE sender = ?", (anonymous, sender)
            )
        return gone

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """Record and allow a notice at most once per `every_seconds` per sender."""
        now = self._clock()
        with self._tx(deadline) as db:
            row = db.execute(
                "SELECT sent_at FROM notices WHERE sender = ? AND kind = ?", (sender, kind)
            ).fetchone()
            if row is not None and now - row[0] < every_seconds:
                return False
            db.execute(
                "INSERT OR REPLACE INTO notices (sender, kind, sent_at) VALUES (?, ?, ?)",
                (sender, kind, now),
            )
        return True

    def ping(self) -> None:
        """A trivial query on this thread's connection."""
        self._read("SELECT 1")

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
