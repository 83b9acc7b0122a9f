"""The HistoryStore operations in PostgreSQL's SQL; postgres.py supplies the connections."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from bot.deadline import Deadline
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

T = TypeVar("T")
MAINTENANCE_SECONDS = 10.0

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
    INSERT INTO messages (conversation, sender, role, text, sources, message_sid, created_at)
    SELECT turn.* FROM logged, (
        VALUES (%(conversation)s, %(sender)s, 'user', %(question)s, '[]'::jsonb, %(sid)s,
                to_timestamp(%(now)s)),
               (%(conversation)s, %(sender)s, 'assistant', %(answer)s, %(sources)s::jsonb,
                %(sid)s, to_timestamp(%(now)s))
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

NOTICE_DUE = """
INSERT INTO notices (sender, kind, sent_at) VALUES (%s, %s, to_timestamp(%s))
ON CONFLICT (sender, kind) DO UPDATE SET sent_at = EXCLUDED.sent_at
    WHERE notices.sent_at <= to_timestamp(%s)
RETURNING 1
"""


class PostgresQueries:
    """Every HistoryStore method as SQL run through `_run` (one transaction each)."""

    _clock: Callable[[], float]
    _pruning: PruneSchedule

    def _run(self, deadline: Deadline, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see HistoryStore.claim)."""
        now = self._clock()
        self._pruning.run_if_due(now, lambda: self._prune_step(now, deadline.child(PRUNE_SECONDS)))
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

        def work(cur: Any) -> Delivery:
            cur.execute(CLAIM, args)
            if cur.fetchone():
                return Delivery("new")
            cur.execute(
                "SELECT state, reply FROM deliveries WHERE message_sid = %s", (message_sid,)
            )
            row = cur.fetchone()
            # No row: answered before its id was pruned, or released a moment ago (which a
            # wait for the pending claim would also have ended in): nothing to send.
            return Delivery(row[0], row[1]) if row else Delivery("done")

        return self._run(deadline, work)

    def _prune_step(self, now: float, deadline: Deadline) -> int:
        """Delete ids past their window, blank reply text past its window (bounded)."""

        def work(cur: Any) -> int:
            cur.execute(DELETE_OLD_DELIVERIES, (now - DELIVERY_KEEP_SECONDS, PRUNE_BATCH))
            deleted = cur.rowcount
            cur.execute(BLANK_OLD_REPLIES, (now - REPLY_KEEP_SECONDS, PRUNE_BATCH))
            return max(deleted, cur.rowcount)

        return self._run(deadline, work)

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Mark a delivery done with the reply it got."""
        self._run(
            deadline,
            lambda cur: cur.execute(
                "UPDATE deliveries SET state = 'done', reply = %s, updated_at = to_timestamp(%s)"
                " WHERE message_sid = %s",
                (reply, self._clock(), message_sid),
            ),
        )

    def release(self, message_sid: str) -> None:
        """Forget an unfinished claim."""
        self._run(
            Deadline(2),
            lambda cur: cur.execute(
                "DELETE FROM deliveries WHERE message_sid = %s AND state = 'pending'",
                (message_sid,),
            ),
        )

    def delivery(self, message_sid: str, deadline: Deadline) -> Delivery | None:
        """The current state of a delivery."""
        rows = self._rows(
            deadline, "SELECT state, reply FROM deliveries WHERE message_sid = %s", (message_sid,)
        )
        return Delivery(rows[0][0], rows[0][1]) if rows else None

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        if limit <= 0:
            return []
        rows = self._rows(
            deadline,
            "SELECT role, text, EXTRACT(EPOCH FROM created_at) FROM messages"
            " WHERE conversation = %s ORDER BY id DESC LIMIT %s",
            (conversation, limit),
        )
        return [Turn(role, text, float(at)) for role, text, at in reversed(rows)]

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
        """Store both turns, count and log the question, prune the conversation to `keep`."""
        now = self._clock()
        record = record or AnswerRecord()
        args = {
            "conversation": conversation,
            "sender": sender,
            "question": question,
            "answer": answer,
            "sources": json.dumps(list(sources)),
            "sid": message_sid,
            "now": now,
            "day": utc_day(now),
            "keep": max(0, keep),
            "normalised": normalise_question(question),
            "kind": record.kind,
            "backend": record.backend,
            "reason": record.fallback_reason,
            "latency": record.latency_ms,
        }
        self._run(deadline, lambda cur: cur.execute(APPEND_EXCHANGE, args))

    def last_sources(self, conversation: str, deadline: Deadline) -> tuple[str, ...] | None:
        """Sources stored with the conversation's latest answer."""
        rows = self._rows(
            deadline,
            "SELECT sources FROM messages WHERE conversation = %s AND role = 'assistant'"
            " ORDER BY id DESC LIMIT 1",
            (conversation,),
        )
        return tuple(rows[0][0]) if rows else None

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Delete one conversation's turns and blank its deliveries' reply text."""

        def work(cur: Any) -> int:
            cur.execute(
                "UPDATE deliveries SET reply = '' WHERE conversation = %s AND reply <> ''",
                (conversation,),
            )
            cur.execute("DELETE FROM messages WHERE conversation = %s", (conversation,))
            return cur.rowcount

        return self._run(deadline, work)

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, notices, feedback and cache entries; their counters,
        answers log rows and delivery ids stay, anonymised (no text, no number)."""
        anonymous = anonymous_key()

        def work(cur: Any) -> int:
            gone = 0
            for sql in (
                "DELETE FROM messages WHERE sender = %s",
                "DELETE FROM feedback WHERE sender = %s",
                "DELETE FROM answer_cache WHERE created_by = %s",
            ):
                cur.execute(sql, (sender,))
                gone += cur.rowcount
            cur.execute("DELETE FROM notices WHERE sender = %s", (sender,))
            cur.execute("UPDATE usage SET sender = %s WHERE sender = %s", (anonymous, sender))
            cur.execute(
                "UPDATE answers SET sender = %s, question = '' WHERE sender = %s",
                (anonymous, sender),
            )
            # The ids stay: a replayed request is recognised and answered by nothing.
            cur.execute(
                "UPDATE deliveries SET conversation = %s, reply = '' WHERE conversation = %s",
                (anonymous, sender),
            )
            return gone

        return self._run(Deadline(MAINTENANCE_SECONDS), work)

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """Record and allow a notice at most once per `every_seconds` per sender."""
        now = self._clock()
        rows = self._rows(deadline, NOTICE_DUE, (sender, kind, now, now - every_seconds))
        return bool(rows)

    def _rows(self, deadline: Deadline, sql: str, params: tuple) -> list[tuple]:
        """A single statement's rows (empty for one that returns none)."""

        def work(cur: Any) -> list[tuple]:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return self._run(deadline, work)
