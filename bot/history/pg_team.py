"""The PostgreSQL store's team data: usage, stats, feedback, the answer cache, confirmations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from bot.deadline import Deadline
from bot.history.store import (
    NO_EXCHANGE,
    AnswerCounts,
    CachedAnswer,
    Exchange,
    Feedback,
    SenderUsage,
    UsageStats,
    every_day,
    median_ms,
    most_asked,
    utc_day,
    window_start,
)

T = TypeVar("T")

LAST_ANSWER = """
SELECT a.message_sid, q.text, a.text, EXTRACT(EPOCH FROM a.created_at)
FROM messages a JOIN messages q ON q.message_sid = a.message_sid AND q.role = 'user'
WHERE a.sender = %s AND a.role = 'assistant'
ORDER BY a.id DESC LIMIT 1
"""

CACHE_ANSWER = """
INSERT INTO answer_cache (question, knowledge_version, answer, sources, created_by, created_at)
VALUES (%(question)s, %(version)s, %(answer)s, %(sources)s::jsonb, %(by)s, to_timestamp(%(now)s))
ON CONFLICT (question, knowledge_version) DO UPDATE
    SET answer = EXCLUDED.answer, sources = EXCLUDED.sources,
        created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at
"""


class PostgresTeamQueries:
    """The HistoryStore methods behind `stats`, feedback and the cache, in PostgreSQL's SQL."""

    _clock: Callable[[], float]

    def _run(self, deadline: Deadline, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _rows(self, deadline: Deadline, sql: str, params: tuple) -> list[tuple]:
        raise NotImplementedError

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored question and answer (recent enough, if asked)."""
        since = float("-inf") if within_seconds is None else self._clock() - within_seconds
        rows = self._rows(deadline, LAST_ANSWER, (sender,))
        if not rows or float(rows[0][3]) < since:
            return None
        return Exchange(rows[0][0], rows[0][1], rows[0][2], float(rows[0][3]))

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember the request as a notice of kind 'confirm:<action>'."""
        self._run(
            deadline,
            lambda cur: cur.execute(
                "INSERT INTO notices (sender, kind, sent_at) VALUES (%s, %s, to_timestamp(%s))"
                " ON CONFLICT (sender, kind) DO UPDATE SET sent_at = EXCLUDED.sent_at",
                (sender, f"confirm:{action}", self._clock()),
            ),
        )

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """Consume a pending confirmation request; True if it was recent enough."""
        rows = self._rows(
            deadline,
            "DELETE FROM notices WHERE sender = %s AND kind = %s"
            " RETURNING sent_at >= to_timestamp(%s)",
            (sender, f"confirm:{action}", self._clock() - within_seconds),
        )
        return bool(rows and rows[0][0])

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's answered questions: in total, today, on how many days, this week."""
        now = self._clock()
        rows = self._rows(
            deadline,
            "SELECT COALESCE(SUM(questions), 0),"
            " COALESCE(SUM(questions) FILTER (WHERE day = %s), 0), COUNT(*),"
            " COALESCE(SUM(questions) FILTER (WHERE day >= %s), 0)"
            " FROM usage WHERE sender = %s",
            (utc_day(now), utc_day(window_start(now, 7)), sender),
        )
        return SenderUsage(*(int(v) for v in rows[0]))

    def stats(self, days: int, top: int, deadline: Deadline) -> UsageStats:
        """Usage over the last `days` UTC days (today included)."""
        now = self._clock()
        since = window_start(now, days)
        first_day = utc_day(since)

        def work(cur: Any) -> UsageStats:
            cur.execute(
                "SELECT day, SUM(questions), COUNT(DISTINCT sender) FROM usage WHERE day >= %s"
                " GROUP BY day ORDER BY day",
                (first_day,),
            )
            per_day = every_day(((d.isoformat(), q, n) for d, q, n in cur.fetchall()), now, days)
            cur.execute("SELECT COUNT(DISTINCT sender) FROM usage WHERE day >= %s", (first_day,))
            active = int(cur.fetchone()[0])
            cur.execute(
                "SELECT question, COUNT(*) FROM answers WHERE created_at >= to_timestamp(%s)"
                " AND question <> '' GROUP BY question",
                (since,),
            )
            asked = most_asked(cur.fetchall(), top)
            cur.execute(
                "SELECT kind, COUNT(*) FROM answers WHERE created_at >= to_timestamp(%s)"
                " GROUP BY kind",
                (since,),
            )
            kinds = AnswerCounts.from_rows(cur.fetchall())
            cur.execute(
                "SELECT latency_ms FROM answers WHERE created_at >= to_timestamp(%s)"
                " AND latency_ms IS NOT NULL",
                (since,),
            )
            median = median_ms(v for (v,) in cur.fetchall())
            cur.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE rating = 'up'),"
                " COUNT(*) FILTER (WHERE rating = 'down') FROM feedback"
                " WHERE created_at >= to_timestamp(%s)",
                (since,),
            )
            total, up, down = (int(v) for v in cur.fetchone())
            return UsageStats(per_day, active, asked, total, kinds, median, up, down)

        return self._run(deadline, work)

    def add_feedback(
        self,
        sender: str,
        conversation: str,
        text: str,
        deadline: Deadline,
        *,
        rating: str = "",
        about: Exchange | None = None,
    ) -> None:
        """Store one feedback entry, with the exchange it refers to."""
        about = about or NO_EXCHANGE
        sid, question, answer = about.message_sid, about.question, about.answer
        now = self._clock()

        def work(cur: Any) -> None:
            if rating and sid:
                cur.execute(
                    "DELETE FROM feedback WHERE sender = %s AND message_sid = %s AND rating <> ''",
                    (sender, sid),
                )
            cur.execute(
                "INSERT INTO feedback (sender, conversation, text, created_at, rating,"
                " message_sid, question, answer)"
                " VALUES (%s, %s, %s, to_timestamp(%s), %s, %s, %s, %s)",
                (sender, conversation, text, now, rating, sid, question, answer),
            )

        self._run(deadline, work)

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The newest feedback first."""
        rows = self._rows(
            deadline,
            "SELECT sender, text, EXTRACT(EPOCH FROM created_at), rating, question, answer,"
            " message_sid FROM feedback ORDER BY id DESC LIMIT %s",
            (max(0, limit),),
        )
        return [
            Feedback(sender, text, float(at), rating, question, answer, sid)
            for sender, text, at, rating, question, answer, sid in rows
        ]

    def cached_answer(
        self, question: str, knowledge_version: str, max_age_seconds: float, deadline: Deadline
    ) -> CachedAnswer | None:
        """A fresh enough cache entry for this question and knowledge version."""
        rows = self._rows(
            deadline,
            "SELECT answer, sources FROM answer_cache WHERE question = %s"
            " AND knowledge_version = %s AND created_at >= to_timestamp(%s)",
            (question, knowledge_version, self._clock() - max_age_seconds),
        )
        return CachedAnswer(rows[0][0], tuple(rows[0][1])) if rows else None

    def cache_answer(
        self,
        question: str,
        knowledge_version: str,
        answer: CachedAnswer,
        created_by: str,
        max_age_seconds: float,
        deadline: Deadline,
    ) -> None:
        """Upsert one entry and drop expired or outdated ones."""
        now = self._clock()
        args = {
            "question": question,
            "version": knowledge_version,
            "answer": answer.text,
            "sources": json.dumps(list(answer.sources)),
            "by": created_by,
            "now": now,
        }

        def work(cur: Any) -> None:
            cur.execute(
                "DELETE FROM answer_cache WHERE created_at < to_timestamp(%s)"
                " OR knowledge_version <> %s",
                (now - max_age_seconds, knowledge_version),
            )
            cur.execute(CACHE_ANSWER, args)

        self._run(deadline, work)
