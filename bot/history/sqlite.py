"""Conversation history on SQLite: the embedded default when no DATABASE_URL is set.

SqliteHistoryStore composes one part per concern, each running its SQL on the shared
SqliteDatabase: deliveries and conversations here, the rest in sqlite_team.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.deadline import Deadline
from bot.history.records import (
    Delivery,
    Exchange,
    ExchangeRecord,
    normalise_question,
    utc_day,
)
from bot.history.sqlite_db import SqliteDatabase, SqlitePart
from bot.history.sqlite_team import SqliteAnswerCache, SqliteNotices, SqliteTeamLog, file_answer
from bot.history.store import (
    DELIVERY_KEEP_SECONDS,
    PRUNE_BATCH,
    PRUNE_SECONDS,
    REPLY_KEEP_SECONDS,
    SOURCES_LOOKBACK,
    STALE_CLAIM_SECONDS,
    ComposedStore,
    PruneSchedule,
)
from bot.models import Turn
from bot.readers import fits
from bot.sqlite_pool import DEFAULT_SIZE, SqlitePool

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
LOG_ANSWER = (
    "INSERT OR IGNORE INTO answers (message_sid, sender, question, kind, backend,"
    " fallback_reason, latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
COUNT_QUESTION = (
    "INSERT INTO usage (sender, day, questions) VALUES (?, ?, 1)"
    " ON CONFLICT (sender, day) DO UPDATE SET questions = questions + 1"
)
PRUNE_CONVERSATION = (
    "DELETE FROM messages WHERE conversation = ? AND id NOT IN"
    " (SELECT id FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?)"
)
COMPLETE = "UPDATE deliveries SET state = 'done', reply = ?, updated_at = ? WHERE message_sid = ?"
INSERT_TURN = (
    "INSERT OR IGNORE INTO messages (conversation, sender, role, text, sources,"
    " message_sid, created_at, readers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class SqliteDeliveries(SqlitePart):
    """Deliveries in SQLite: claims, their replies, bounded pruning."""

    pruning: PruneSchedule = field(default_factory=PruneSchedule)

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see Deliveries.claim)."""
        now = self.clock()
        self.pruning.run_if_due(now, lambda: self._prune_step(now, deadline.child(PRUNE_SECONDS)))
        with self.db.tx(deadline) as db:
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
        with self.db.tx(deadline) as db:
            ids_before, text_before = now - DELIVERY_KEEP_SECONDS, now - REPLY_KEEP_SECONDS
            deleted = db.execute(DELETE_OLD_DELIVERIES, (ids_before, PRUNE_BATCH)).rowcount
            blanked = db.execute(BLANK_OLD_REPLIES, (text_before, PRUNE_BATCH)).rowcount
        return max(deleted, blanked)

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Mark a delivery done with the reply it got."""
        with self.db.tx(deadline) as db:
            db.execute(COMPLETE, (reply, self.clock(), message_sid))

    def release(self, message_sid: str) -> None:
        """Forget an unfinished claim."""
        with self.db.tx(Deadline(2)) as db:
            db.execute(
                "DELETE FROM deliveries WHERE message_sid = ? AND state = 'pending'",
                (message_sid,),
            )

    def delivery(self, message_sid: str, deadline: Deadline) -> Delivery | None:
        """The current state of a delivery."""
        rows = self.db.read(
            "SELECT state, reply FROM deliveries WHERE message_sid = ?", (message_sid,)
        )
        return Delivery(rows[0][0], rows[0][1]) if rows else None


class SqliteConversations(SqlitePart):
    """Conversations in SQLite: turns, the answers log and usage counts they feed."""

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        if limit <= 0:
            return []
        rows = self.db.read(
            "SELECT role, text, created_at, sender, readers FROM messages WHERE conversation = ?"
            " ORDER BY id DESC LIMIT ?",
            (conversation, limit),
            deadline,
        )
        return [Turn(*row) for row in reversed(rows)]

    def append_exchange(self, exchange: ExchangeRecord, deadline: Deadline) -> None:
        """Log, store both turns and count the question, prune; complete the delivery and
        cache the answer when asked: one transaction."""
        now = self.clock()
        sid, conversation, sender = exchange.message_sid, exchange.conversation, exchange.sender
        with self.db.tx(deadline) as db:
            # The answers log is never pruned, so it knows every MessageSid ever answered:
            # a redelivered exchange stores and counts nothing, even after pruning.
            if db.execute(LOG_ANSWER, _logged(exchange, now)).rowcount:
                readers = exchange.readers
                question = (
                    conversation,
                    sender,
                    "user",
                    exchange.question,
                    "[]",
                    sid,
                    now,
                    readers,
                )
                sources = json.dumps(exchange.sources)
                answer = (
                    conversation,
                    sender,
                    "assistant",
                    exchange.answer,
                    sources,
                    sid,
                    now,
                    readers,
                )
                db.execute(INSERT_TURN, question)
                db.execute(INSERT_TURN, answer)
                db.execute(COUNT_QUESTION, (sender, utc_day(now)))
                db.execute(PRUNE_CONVERSATION, (conversation, conversation, max(0, exchange.keep)))
            if exchange.cache is not None:
                file_answer(self.db, db, exchange.cache, sender, now)
            if exchange.reply is not None:
                db.execute(COMPLETE, (exchange.reply, now, sid))
        if exchange.cache is not None:
            self.db.cache_version = exchange.cache.knowledge_version

    def last_sources(
        self, conversation: str, deadline: Deadline, readable: frozenset[str] | None = None
    ) -> tuple[str, ...] | None:
        """Sources stored with the conversation's latest answer a reader of `readable` may
        see (bot/readers.fits)."""
        rows = self.db.read(
            "SELECT sources, readers FROM messages WHERE conversation = ? AND role = 'assistant'"
            " ORDER BY id DESC LIMIT ?",
            (conversation, 1 if readable is None else SOURCES_LOOKBACK),
            deadline,
        )
        found = next((sources for sources, readers in rows if fits(readers, readable)), None)
        return None if found is None else tuple(json.loads(found))

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Delete one conversation's turns and blank its deliveries' reply text."""
        with self.db.tx(deadline) as db:
            db.execute(
                "UPDATE deliveries SET reply = '' WHERE conversation = ? AND reply <> ''",
                (conversation,),
            )
            return db.execute(
                "DELETE FROM messages WHERE conversation = ?", (conversation,)
            ).rowcount

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored question and answer (recent enough, if asked)."""
        since = float("-inf") if within_seconds is None else self.clock() - within_seconds
        rows = self.db.read(
            "SELECT a.message_sid, q.text, a.text, a.created_at FROM messages a"
            " JOIN messages q ON q.message_sid = a.message_sid AND q.role = 'user'"
            " WHERE a.sender = ? AND a.role = 'assistant' ORDER BY a.id DESC LIMIT 1",
            (sender,),
            deadline,
        )
        return Exchange(*rows[0]) if rows and rows[0][3] >= since else None


def _logged(exchange: ExchangeRecord, now: float) -> tuple:
    """The exchange's row of the answers log."""
    how = (exchange.kind, exchange.backend, exchange.fallback_reason, exchange.latency_ms)
    question = normalise_question(exchange.question)
    return (exchange.message_sid, exchange.sender, question, *how, now)


class SqliteHistoryStore(ComposedStore):
    """HistoryStore on one SQLite file: the concern parts on one pooled SqliteDatabase."""

    backend = "sqlite"

    def __init__(
        self, path: str, clock: Callable[[], float] = time.time, pool_size: int = DEFAULT_SIZE
    ) -> None:
        self.path = path
        self._db = SqliteDatabase(path, pool_size)
        # One part per concern, in the order ComposedStore takes them.
        parts = (
            SqliteDeliveries,
            SqliteConversations,
            SqliteNotices,
            SqliteTeamLog,
            SqliteAnswerCache,
        )
        super().__init__(*(part(self._db, clock) for part in parts))

    @property
    def _pool(self) -> SqlitePool:
        """The connection pool in use (tests hold its connections to exhaust it)."""
        return self._db.pool

    def ping(self) -> None:
        """A trivial query on a pooled connection."""
        self._db.read("SELECT 1")

    def close(self) -> None:
        """Close the connections (those in use when returned); later calls open new ones."""
        self._db.close()

    def after_fork(self) -> None:
        """In a gunicorn worker: leave the master's connections alone, open our own."""
        self._db.after_fork()
