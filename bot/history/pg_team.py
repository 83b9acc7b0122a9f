"""Notices, the team's log and the answer cache in PostgreSQL's SQL, run on the store's
database."""

from __future__ import annotations

from typing import Any

from bot.deadline import Deadline
from bot.history.pg_queries import PostgresPart, file_answer
from bot.history.records import (
    NO_EXCHANGE,
    AnswerCounts,
    CachedAnswer,
    CacheEntry,
    Exchange,
    Feedback,
    SenderUsage,
    UsageStats,
    anonymous_key,
    every_day,
    median_ms,
    most_asked,
    utc_day,
    window_start,
)

# `forget` touches every table: it gets a budget of its own, not the request's.
MAINTENANCE_SECONDS = 10.0

NOTICE_DUE = """
INSERT INTO notices (sender, kind, sent_at) VALUES (%s, %s, to_timestamp(%s))
ON CONFLICT (sender, kind) DO UPDATE SET sent_at = EXCLUDED.sent_at
    WHERE notices.sent_at <= to_timestamp(%s)
RETURNING 1
"""


class PostgresNotices(PostgresPart):
    """Notices and confirmation requests in PostgreSQL (one row per sender and kind)."""

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """Record and allow a notice at most once per `every_seconds` per sender."""
        now = self.clock()
        rows = self.db.rows(deadline, NOTICE_DUE, (sender, kind, now, now - every_seconds))
        return bool(rows)

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember the request as a notice of kind 'confirm:<action>'."""
        self.db.run(
            deadline,
            lambda cur: cur.execute(
                "INSERT INTO notices (sender, kind, sent_at) VALUES (%s, %s, to_timestamp(%s))"
                " ON CONFLICT (sender, kind) DO UPDATE SET sent_at = EXCLUDED.sent_at",
                (sender, f"confirm:{action}", self.clock()),
            ),
        )

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """Consume a pending confirmation request; True if it was recent enough."""
        rows = self.db.rows(
            deadline,
            "DELETE FROM notices WHERE sender = %s AND kind = %s"
            " RETURNING sent_at >= to_timestamp(%s)",
            (sender, f"confirm:{action}", self.clock() - within_seconds),
        )
        return bool(rows and rows[0][0])


class PostgresTeamLog(PostgresPart):
    """Usage, stats and feedback in PostgreSQL; `forget` anonymises what the numbers need."""

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's answered questions: in total, today, on how many days, this week."""
        now = self.clock()
        rows = self.db.rows(
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
        now = self.clock()
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

        return self.db.run(deadline, work)

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
        now = self.clock()

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

        self.db.run(deadline, work)

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The newest feedback first."""
        rows = self.db.rows(
            deadline,
            "SELECT sender, text, EXTRACT(EPOCH FROM created_at), rating, question, answer,"
            " message_sid FROM feedback ORDER BY id DESC LIMIT %s",
            (max(0, limit),),
        )
        return [
            Feedback(sender, text, float(at), rating, question, answer, sid)
            for sender, text, at, rating, question, answer, sid in rows
        ]

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

        return self.db.run(Deadline(MAINTENANCE_SECONDS), work)


class PostgresAnswerCache(PostgresPart):
    """The answer cache in PostgreSQL (one row per question and knowledge version)."""

    def cached_answer(
        self, question: str, knowledge_version: str, max_age_seconds: float, deadline: Deadline
    ) -> CachedAnswer | None:
        """A fresh enough cache entry for this question and knowledge version."""
        rows = self.db.rows(
            deadline,
            "SELECT answer, sources FROM answer_cache WHERE question = %s"
            " AND knowledge_version = %s AND created_at >= to_timestamp(%s)",
            (question, knowledge_version, self.clock() - max_age_seconds),
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
        entry = CacheEntry(question, knowledge_version, answer, max_age_seconds)
        sql, args = file_answer(self.db, entry, created_by, self.clock())
        self.db.rows(deadline, sql, args)
        self.db.cache_version = knowledge_version
