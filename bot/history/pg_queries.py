"""Deliveries and conversations in PostgreSQL's SQL, run on the store's database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from bot.deadline import Deadline
from bot.history.records import (
    CacheEntry,
    Delivery,
    Exchange,
    ExchangeRecord,
    normalise_question,
    utc_day,
)
from bot.history.store import (
    DELIVERY_KEEP_SECONDS,
    PRUNE_BATCH,
    PRUNE_SECONDS,
    REPLY_KEEP_SECONDS,
    SOURCES_LOOKBACK,
    STALE_CLAIM_SECONDS,
    PruneSchedule,
)
from bot.models import Turn
from bot.readers import fits

T = TypeVar("T")


class Transactions(Protocol):
    """What the SQL runs on (postgres.PostgresDatabase): one bounded transaction a call."""

    # The knowledge version this process last filed answers under: the other versions'
    # cache entries were dropped then (file_answer).
    cache_version: str

    def run(self, deadline: Deadline, work: Callable[[Any], T]) -> T:
        """`work` on a cursor in one transaction; HistoryUnavailable when it cannot be."""
        ...

    def rows(self, deadline: Deadline, sql: str, params: tuple | dict) -> list[tuple]:
        """`sql` in one round trip: a statement, or several that succeed or fail together;
        the last one's rows (empty for one that returns none)."""
        ...


@dataclass
class PostgresPart:
    """What each part of the PostgreSQL store (one per concern) runs on."""

    db: Transactions
    clock: Callable[[], float]


# Logs the answer, stores both turns and counts the question only when the MessageSid is
# new to the answers log (never pruned, so a redelivery stores nothing even after pruning),
# then prunes the conversation: one round trip, one transaction.
APPEND_EXCHANGE = """
WITH logged AS (
    INSERT INTO answers (message_sid, sender, question, kind, backend, fallback_reason,
                         latency_ms, created_at)
    VALUES (%(sid)s, %(sender)s, %(normalised)s, %(kind)s, %(backend)s, %(reason)s,
            %(latency)s, to_timestamp(%(now)s))
    ON CONFLICT (message_sid) DO NOTHING
    RETURNING 1
), stored AS (
    INSERT INTO messages (conversation, sender, role, text, sources, message_sid, created_at,
                          readers)
    SELECT turn.* FROM logged, (
        VALUES (%(conversation)s, %(sender)s, 'user', %(question)s, '[]'::jsonb, %(sid)s,
                to_timestamp(%(now)s), %(readers)s),
               (%(conversation)s, %(sender)s, 'assistant', %(answer)s, %(sources)s::jsonb,
                %(sid)s, to_timestamp(%(now)s), %(readers)s)
    ) AS turn
    ON CONFLICT (message_sid, role) DO NOTHING
)
INSERT INTO usage (sender, day, questions)
SELECT %(sender)s, %(day)s, 1 FROM logged
ON CONFLICT (sender, day) DO UPDATE SET questions = usage.questions + 1;
DELETE FROM messages WHERE conversation = %(conversation)s AND id <= (
    SELECT id FROM messages WHERE conversation = %(conversation)s
    ORDER BY id DESC OFFSET %(keep)s LIMIT 1
);
"""

COMPLETE = """
UPDATE deliveries SET state = 'done', reply = %(reply)s, updated_at = to_timestamp(%(now)s)
WHERE message_sid = %(sid)s;
"""

# Filing an answer in the cache: expired entries go first (through answer_cache_by_time,
# so nothing is read when none expired), then, only the first time this process files
# under a knowledge version, every other version's (a scan of the table).
DROP_EXPIRED = "DELETE FROM answer_cache WHERE created_at < to_timestamp(%(cache_expired)s);"
DROP_OTHER_VERSIONS = "DELETE FROM answer_cache WHERE knowledge_version <> %(cache_version)s;"
FILE_ANSWER = """
INSERT INTO answer_cache (question, knowledge_version, answer, sources, created_by, created_at)
VALUES (%(cache_question)s, %(cache_version)s, %(cache_answer)s, %(cache_sources)s::jsonb,
        %(cache_by)s, to_timestamp(%(now)s))
ON CONFLICT (question, knowledge_version) DO UPDATE
    SET answer = EXCLUDED.answer, sources = EXCLUDED.sources,
        created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at;
"""


def file_answer(db: Transactions, entry: CacheEntry, by: str, now: float) -> tuple[str, dict]:
    """The statements and arguments that file one answer (to run with others or alone)."""
    sql = DROP_EXPIRED
    if db.cache_version != entry.knowledge_version:
        sql += DROP_OTHER_VERSIONS
    args = {
        "cache_expired": now - entry.max_age_seconds,
        "cache_version": entry.knowledge_version,
        "cache_question": entry.question,
        "cache_answer": entry.answer.text,
        "cache_sources": json.dumps(list(entry.answer.sources)),
        "cache_by": by,
        "now": now,
    }
    return sql + FILE_ANSWER, args


# A new claim, or taking over our own (a retried call) or a stale one; RETURNING says which.
# A MessageSid whose id was pruned but which the answers log knows is not claimed: a replay.
CLAIM = """
INSERT INTO deliveries (message_sid, conversation, state, reply, owner, updated_at)
SELECT %(sid)s, %(conversation)s, 'pending', '', %(owner)s, to_timestamp(%(now)s)
WHERE NOT EXISTS (SELECT 1 FROM answers WHERE message_sid = %(sid)s)
   OR EXISTS (SELECT 1 FROM deliveries WHERE message_sid = %(sid)s)
ON CONFLICT (message_sid) DO UPDATE
    SET conversation = EXCLUDED.conversation, owner = EXCLUDED.owner,
        updated_at = EXCLUDED.updated_at
    WHERE deliveries.state = 'pending'
      AND (deliveries.owner = EXCLUDED.owner OR deliveries.updated_at < to_timestamp(%(stale)s))
RETURNING 1
"""
CLAIMED = "SELECT state, reply FROM deliveries WHERE message_sid = %s"

# One pruning step (see PruneSchedule), each statement bounded by PRUNE_BATCH rows; rows
# another transaction holds (a claim, a forget) are left for the next step.
# (`= ANY(ARRAY(...))`: the batch's ids are looked up one by one, whatever the estimates.)
DELETE_OLD_DELIVERIES = """
DELETE FROM deliveries WHERE message_sid = ANY(ARRAY(
    SELECT message_sid FROM deliveries WHERE updated_at < to_timestamp(%s)
    ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED
))
"""
BLANK_OLD_REPLIES = """
UPDATE deliveries SET reply = '' WHERE message_sid = ANY(ARRAY(
    SELECT message_sid FROM deliveries WHERE reply <> '' AND updated_at < to_timestamp(%s)
    ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED
))
"""

LAST_ANSWER = """
SELECT a.message_sid, q.text, a.text, EXTRACT(EPOCH FROM a.created_at)
FROM messages a JOIN messages q ON q.message_sid = a.message_sid AND q.role = 'user'
WHERE a.sender = %s AND a.role = 'assistant'
ORDER BY a.id DESC LIMIT 1
"""


@dataclass
class PostgresDeliveries(PostgresPart):
    """Deliveries in PostgreSQL: claims, their replies, bounded pruning."""

    pruning: PruneSchedule = field(default_factory=PruneSchedule)

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see Deliveries.claim)."""
        now = self.clock()
        self.pruning.run_if_due(now, lambda: self._prune_step(now, deadline.child(PRUNE_SECONDS)))
        # The same owner token on a retry: a claim whose commit succeeded but whose answer
        # was lost with the connection is still ours.
        owner = uuid.uuid4().hex
        args = {
            "sid": message_sid,
            "conversation": conversation,
            "owner": owner,
            "now": now,
            "stale": now - STALE_CLAIM_SECONDS,
        }

        # One round trip each, not a transaction's three: the claim is one statement, and
        # the read after a refused one must see what another request committed meanwhile,
        # which a statement of its own does (READ COMMITTED: a snapshot per statement).
        if self.db.rows(deadline, CLAIM, args):
            return Delivery("new")
        found = self.db.rows(deadline, CLAIMED, (message_sid,))
        # No row: answered before its id was pruned, or released a moment ago (which a
        # wait for the pending claim would also have ended in): nothing to send.
        return Delivery(*found[0]) if found else Delivery("done")

    def _prune_step(self, now: float, deadline: Deadline) -> int:
        """Delete ids past their window, blank reply text past its window (bounded)."""

        def work(cur: Any) -> int:
            cur.execute(DELETE_OLD_DELIVERIES, (now - DELIVERY_KEEP_SECONDS, PRUNE_BATCH))
            deleted = cur.rowcount
            cur.execute(BLANK_OLD_REPLIES, (now - REPLY_KEEP_SECONDS, PRUNE_BATCH))
            return max(deleted, cur.rowcount)

        return self.db.run(deadline, work)

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Mark a delivery done with the reply it got."""
        args = {"reply": reply, "now": self.clock(), "sid": message_sid}
        self.db.rows(deadline, COMPLETE, args)

    def release(self, message_sid: str) -> None:
        """Forget an unfinished claim."""
        self.db.run(
            Deadline(2),
            lambda cur: cur.execute(
                "DELETE FROM deliveries WHERE message_sid = %s AND state = 'pending'",
                (message_sid,),
            ),
        )

    def delivery(self, message_sid: str, deadline: Deadline) -> Delivery | None:
        """The current state of a delivery."""
        rows = self.db.rows(
            deadline, "SELECT state, reply FROM deliveries WHERE message_sid = %s", (message_sid,)
        )
        return Delivery(rows[0][0], rows[0][1]) if rows else None


class PostgresConversations(PostgresPart):
    """Conversations in PostgreSQL: turns, the answers log and usage counts they feed."""

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        if limit <= 0:
            return []
        rows = self.db.rows(
            deadline,
            "SELECT role, text, EXTRACT(EPOCH FROM created_at), sender, readers FROM messages"
            " WHERE conversation = %s ORDER BY id DESC LIMIT %s",
            (conversation, limit),
        )
        return [Turn(role, text, float(at), *rest) for role, text, at, *rest in reversed(rows)]

    def append_exchange(self, exchange: ExchangeRecord, deadline: Deadline) -> None:
        """Store both turns, count and log the question, prune the conversation to `keep`;
        complete the delivery and cache the answer when asked: one transaction, its
        statements sent together."""
        now = self.clock()
        args = {
            "conversation": exchange.conversation,
            "sender": exchange.sender,
            "question": exchange.question,
            "answer": exchange.answer,
            "sources": json.dumps(list(exchange.sources)),
            "sid": exchange.message_sid,
            "now": now,
            "day": utc_day(now),
            "keep": max(0, exchange.keep),
            "normalised": normalise_question(exchange.question),
            "kind": exchange.kind,
            "backend": exchange.backend,
            "reason": exchange.fallback_reason,
            "latency": exchange.latency_ms,
            "readers": exchange.readers,
        }
        sql = APPEND_EXCHANGE
        if exchange.cache is not None:
            cache_sql, cache_args = file_answer(self.db, exchange.cache, exchange.sender, now)
            sql += cache_sql
            args.update(cache_args)
        if exchange.reply is not None:
            sql += COMPLETE
            args["reply"] = exchange.reply
        self.db.rows(deadline, sql, args)
        if exchange.cache is not None:
            self.db.cache_version = exchange.cache.knowledge_version

    def last_sources(
        self, conversation: str, deadline: Deadline, readable: frozenset[str] | None = None
    ) -> tuple[str, ...] | None:
        """Sources stored with the conversation's latest answer a reader of `readable` may
        see (bot/readers.fits)."""
        rows = self.db.rows(
            deadline,
            "SELECT sources, readers FROM messages WHERE conversation = %s"
            " AND role = 'assistant' ORDER BY id DESC LIMIT %s",
            (conversation, 1 if readable is None else SOURCES_LOOKBACK),
        )
        found = next((sources for sources, readers in rows if fits(readers, readable)), None)
        return None if found is None else tuple(found)

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Delete one conversation's turns and blank its deliveries' reply text."""

        def work(cur: Any) -> int:
            cur.execute(
                "UPDATE deliveries SET reply = '' WHERE conversation = %s AND reply <> ''",
                (conversation,),
            )
            cur.execute("DELETE FROM messages WHERE conversation = %s", (conversation,))
            return cur.rowcount

        return self.db.run(deadline, work)

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored question and answer (recent enough, if asked)."""
        since = float("-inf") if within_seconds is None else self.clock() - within_seconds
        rows = self.db.rows(deadline, LAST_ANSWER, (sender,))
        if not rows or float(rows[0][3]) < since:
            return None
        return Exchange(rows[0][0], rows[0][1], rows[0][2], float(rows[0][3]))
