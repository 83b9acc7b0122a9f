"""The HistoryStore operations in PostgreSQL's SQL; postgres.py supplies the connections."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from bot.deadline import Deadline
from bot.history.store import (
    STALE_CLAIM_SECONDS,
    DayUsage,
    Delivery,
    Feedback,
    SenderUsage,
    UsageStats,
    anonymous_key,
    most_asked,
    utc_day,
    window_start,
)
from bot.models import Turn

T = TypeVar("T")
MAINTENANCE_SECONDS = 10.0

# Stores both turns, counts the question only when it was new (a redelivery inserts
# nothing), and prunes the conversation: one round trip, one transaction.
APPEND_EXCHANGE = """
WITH stored AS (
    INSERT INTO messages (conversation, sender, role, text, sources, message_sid, created_at)
    VALUES (%(conversation)s, %(sender)s, 'user', %(question)s, '[]', %(sid)s,
            to_timestamp(%(now)s)),
           (%(conversation)s, %(sender)s, 'assistant', %(answer)s, %(sources)s::jsonb, %(sid)s,
            to_timestamp(%(now)s))
    ON CONFLICT (message_sid, role) DO NOTHING
    RETURNING role
)
INSERT INTO usage (sender, day, questions)
SELECT %(sender)s, %(day)s, 1 FROM stored WHERE role = 'user'
ON CONFLICT (sender, day) DO UPDATE SET questions = usage.questions + 1;
DELETE FROM messages WHERE conversation = %(conversation)s AND id <= (
    SELECT id FROM messages WHERE conversation = %(conversation)s
    ORDER BY id DESC OFFSET %(keep)s LIMIT 1
);
"""

# A new claim, or taking over our own (a retried call) or a stale one; RETURNING says which.
CLAIM = """
INSERT INTO deliveries (message_sid, conversation, state, reply, owner, updated_at)
VALUES (%(sid)s, %(conversation)s, 'pending', '', %(owner)s, to_timestamp(%(now)s))
ON CONFLICT (message_sid) DO UPDATE
    SET conversation = EXCLUDED.conversation, owner = EXCLUDED.owner,
        updated_at = EXCLUDED.updated_at
    WHERE deliveries.state = 'pending'
      AND (deliveries.owner = EXCLUDED.owner OR deliveries.updated_at < to_timestamp(%(stale)s))
RETURNING 1
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

    def _run(self, deadline: Deadline, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Insert a pending delivery unless one exists (see HistoryStore.claim)."""
        now = self._clock()
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
            return Delivery(row[0], row[1]) if row else Delivery("pending")

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
    ) -> None:
        """Store both turns, count the question, prune the conversation to `keep`."""
        now = self._clock()
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
        """Delete one conversation's turns."""

        def work(cur: Any) -> int:
            cur.execute("DELETE FROM messages WHERE conversation = %s", (conversation,))
            return cur.rowcount

        return self._run(deadline, work)

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, deliveries and notices; anonymise counters and feedback."""
        anonymous = anonymous_key()

        def work(cur: Any) -> int:
            cur.execute("DELETE FROM messages WHERE sender = %s", (sender,))
            gone = cur.rowcount
            cur.execute("DELETE FROM deliveries WHERE conversation = %s", (sender,))
            gone += cur.rowcount
            cur.execute("DELETE FROM notices WHERE sender = %s", (sender,))
            cur.execute("UPDATE usage SET sender = %s WHERE sender = %s", (anonymous, sender))
            cur.execute(
                "UPDATE feedback SET sender = %s, conversation = %s WHERE sender = %s",
                (anonymous, anonymous, sender),
            )
            return gone

        return self._run(Deadline(MAINTENANCE_SECONDS), work)

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """Record and allow a notice at most once per `every_seconds` per sender."""
        now = self._clock()
        rows = self._rows(deadline, NOTICE_DUE, (sender, kind, now, now - every_seconds))
        return bool(rows)

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's answered questions: in total, today, and on how many days."""
        rows = self._rows(
            deadline,
            "SELECT COALESCE(SUM(questions), 0),"
            " COALESCE(SUM(questions) FILTER (WHERE day = %s), 0), COUNT(*)"
            " FROM usage WHERE sender = %s",
            (utc_day(self._clock()), sender),
        )
        return SenderUsage(*(int(v) for v in rows[0]))

    def stats(self, days: int, top: int, deadline: Deadline) -> UsageStats:
        """Usage over the last `days` UTC days (today included)."""
        since = window_start(self._clock(), days)
        first_day = utc_day(since)

        def work(cur: Any) -> UsageStats:
            cur.execute(
                "SELECT day, SUM(questions), COUNT(DISTINCT sender) FROM usage WHERE day >= %s"
                " GROUP BY day ORDER BY day",
                (first_day,),
            )
            per_day = tuple(DayUsage(d.isoformat(), int(q), int(n)) for d, q, n in cur.fetchall())
            cur.execute("SELECT COUNT(DISTINCT sender) FROM usage WHERE day >= %s", (first_day,))
            active = int(cur.fetchone()[0])
            cur.execute(
                "SELECT text, COUNT(*) FROM messages WHERE role = 'user'"
                " AND created_at >= to_timestamp(%s) GROUP BY text",
                (since,),
            )
            asked = most_asked(cur.fetchall(), top)
            cur.execute(
                "SELECT COUNT(*) FROM feedback WHERE created_at >= to_timestamp(%s)", (since,)
            )
            return UsageStats(per_day, active, asked, int(cur.fetchone()[0]))

        return self._run(deadline, work)

    def add_feedback(self, sender: str, conversation: str, text: str, deadline: Deadline) -> None:
        """Store one feedback entry."""
        self._run(
            deadline,
            lambda cur: cur.execute(
                "INSERT INTO feedback (sender, conversation, text, created_at)"
                " VALUES (%s, %s, %s, to_timestamp(%s))",
                (sender, conversation, text, self._clock()),
            ),
        )

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The newest feedback first."""
        rows = self._rows(
            deadline,
            "SELECT sender, text, EXTRACT(EPOCH FROM created_at) FROM feedback"
            " ORDER BY id DESC LIMIT %s",
            (max(0, limit),),
        )
        return [Feedback(sender, text, float(at)) for sender, text, at in rows]

    def _rows(self, deadline: Deadline, sql: str, params: tuple) -> list[tuple]:
        """A single statement's rows (empty for one that returns none)."""

        def work(cur: Any) -> list[tuple]:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return self._run(deadline, work)
