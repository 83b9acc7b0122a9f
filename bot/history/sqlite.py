"""Conversation history on SQLite: the embedded default when no DATABASE_URL is set."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.sqlite_team import SqliteTeamQueries
from bot.history.store import (
    DELIVERY_KEEP_SECONDS,
    PRUNE_BATCH,
    PRUNE_SECONDS,
    REPLY_KEEP_SECONDS,
    STALE_CLAIM_SECONDS,
    AnswerRecord,
    Delivery,
    PruneSchedule,
    anonymous_key,
    normalise_question,
    utc_day,
)
from bot.models import Turn
from bot.sqlite_pool import DEFAULT_SIZE, SqlitePool

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
)
LATE_INDEXES = "CREATE INDEX IF NOT EXISTS feedback_by_sender ON feedback (sender);"
# How long an operation given no deadline may wait for a pooled connection: as long as
# SQLite's default busy timeout would let it wait for the file lock.
WAIT_SECONDS = 5.0

# One primary-key lookup: was this MessageSid ever answered?
ANSWERED = "SELECT 1 FROM answers WHERE message_sid = ?"
# One pruning step (see PruneSchedule), each statement bounded by PRUNE_BATCH rows.
DELETE_OLD_DELIVERIES = (
    "DELETE FROM deliveries WHERE message_sid IN (SELECT message_sid FROM deliveries"
    " WHERE updated_at < ? ORDER BY updated_at LIMIT ?)"
)
BLANK_OLD_REPLIES = (
    "UPDATE deliveries SET reply = '' WHERE message_sid IN (SELECT message_sid FROM deliveries"
    " WHERE reply <> '' AND updated_at < ? ORDER BY updated_at LIMIT ?)"
)


def _set_up(db: sqlite3.Connection) -> None:
    """Each new connection: WAL, so readers never wait for the writer."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")


class SqliteHistoryStore(SqliteTeamQueries):
    """HistoryStore on one SQLite file, a bounded pool of connections (WAL for concurrency)."""

    backend = "sqlite"

    def __init__(
        self, path: str, clock: Callable[[], float] = time.time, pool_size: int = DEFAULT_SIZE
    ) -> None:
        self.path = path
        self._clock = clock
        self._pruning = PruneSchedule()
        # ":memory:" is a new, empty database per connection: one connection keeps it one.
        self._pool_size = 1 if path == ":memory:" else pool_size
        self._pool = self._new_pool()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._pool.connection(Deadline(WAIT_SECONDS)) as db:
                # executescript commits on its own, so it runs outside _tx.
                db.executescript(SCHEMA)
                self._add_columns(db)
        except sqlite3.Error as exc:
            self._pool.close()
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
    def _tx(self, deadline: Deadline) -> Iterator[sqlite3.Connection]:
        """One write transaction; waiting for a connection and the file lock is bounded by
        the deadline."""
        try:
            with self._pool.connection(deadline) as db:
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

    def _read(self, sql: str, params: tuple = (), deadline: Deadline | None = None) -> list[tuple]:
        """All rows of one query; waiting for a connection is bounded by the deadline."""
        try:
            with self._pool.connection(deadline or Deadline(WAIT_SECONDS)) as db:
                return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"sqlite: {exc}") from exc

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see HistoryStore.claim)."""
        now = self._clock()
        self._pruning.run_if_due(now, lambda: self._prune_step(now, deadline.child(PRUNE_SECONDS)))
        with self._tx(deadline) as db:
            row = db.execute(
                "SELECT state, reply, updated_at FROM deliveries WHERE message_sid = ?",
                (message_sid,),
            ).fetchone()
            # Its id may be pruned, yet the answers log (never pruned) knows it was answered.
            answered = row is None and bool(db.execute(ANSWERED, (message_sid,)).fetchall())
            if answered:
                found = Delivery("done")
            elif row is None or (row[0] == "pending" and now - row[2] > STALE_CLAIM_SECONDS):
                db.execute(
                    "INSERT OR REPLACE INTO deliveries (message_sid, conversation, state, reply,"
                    " updated_at) VALUES (?, ?, 'pending', '', ?)",
                    (message_sid, conversation, now),
                )
                found = Delivery("new")
            else:
                found = Delivery(row[0], row[1])
        return found

    def _prune_step(self, now: float, deadline: Deadline) -> int:
        """Delete ids past their window, blank reply text past its window (bounded)."""
        with self._tx(deadline) as db:
            ids_before, text_before = now - DELIVERY_KEEP_SECONDS, now - REPLY_KEEP_SECONDS
            deleted = db.execute(DELETE_OLD_DELIVERIES, (ids_before, PRUNE_BATCH)).rowcount
            blanked = db.execute(BLANK_OLD_REPLIES, (text_before, PRUNE_BATCH)).rowcount
        return max(deleted, blanked)

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
            deadline,
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
            deadline,
        )
        return tuple(json.loads(rows[0][0])) if rows else None

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Delete one conversation's turns and blank its deliveries' reply text."""
        with self._tx(deadline) as db:
            db.execute(
                "UPDATE deliveries SET reply = '' WHERE conversation = ? AND reply <> ''",
                (conversation,),
            )
            return db.execute(
                "DELETE FROM messages WHERE conversation = ?", (conversation,)
            ).rowcount

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, notices, feedback and cache entries; their counters,
        answers log rows and delivery ids stay, anonymised (no text, no number)."""
        anonymous = anonymous_key()
        with self._tx(Deadline(10)) as db:
            gone = sum(
                db.execute(sql, (sender,)).rowcount
                for sql in (
                    "DELETE FROM messages WHERE sender = ?",
                    "DELETE FROM feedback WHERE sender = ?",
                    "DELETE FROM answer_cache WHERE created_by = ?",
                )
            )
            db.execute("DELETE FROM notices WHERE sender = ?", (sender,))
            db.execute("UPDATE usage SET sender = ? WHERE sender = ?", (anonymous, sender))
            db.execute(
                "UPDATE answers SET sender = ?, question = '' WHERE sender = ?", (anonymous, sender)
            )
            # The ids stay: a replayed request is recognised and answered by nothing.
            db.execute(
                "UPDATE deliveries SET conversation = ?, reply = '' WHERE conversation = ?",
                (anonymous, sender),
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
        """A trivial query on a pooled connection."""
        self._read("SELECT 1")

    def close(self) -> None:
        """Close the connections (those in use when returned); later calls open new ones."""
        pool, self._pool = self._pool, self._new_pool()
        pool.close()

    def after_fork(self) -> None:
        """In a gunicorn worker: leave the master's connections alone, open our own."""
        self._pool.after_fork()
