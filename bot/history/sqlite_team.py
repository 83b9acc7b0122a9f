"""The SQLite store's team data: usage, stats, feedback, the answer cache, confirmations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

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


class SqliteTeamQueries:
    """The HistoryStore methods behind `stats`, feedback and the cache, for SqliteHistoryStore."""

    _clock: Callable[[], float]

    def _tx(self, deadline: Deadline) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: tuple = (), deadline: Deadline | None = None) -> list[tuple]:
        raise NotImplementedError

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored question and answer (recent enough, if asked)."""
        since = float("-inf") if within_seconds is None else self._clock() - within_seconds
        rows = self._read(
            "SELECT a.message_sid, q.text, a.text, a.created_at FROM messages a"
            " JOIN messages q ON q.message_sid = a.message_sid AND q.role = 'user'"
            " WHERE a.sender = ? AND a.role = 'assistant' ORDER BY a.id DESC LIMIT 1",
            (sender,),
            deadline,
        )
        return Exchange(*rows[0]) if rows and rows[0][3] >= since else None

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember the request as a notice of kind 'confirm:<action>'."""
        with self._tx(deadline) as db:
            db.execute(
                "INSERT OR REPLACE INTO notices (sender, kind, sent_at) VALUES (?, ?, ?)",
                (sender, f"confirm:{action}", self._clock()),
            )

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """Consume a pending confirmation request; True if it was recent enough."""
        since = self._clock() - within_seconds
        with self._tx(deadline) as db:
            row = db.execute(
                "DELETE FROM notices WHERE sender = ? AND kind = ? RETURNING sent_at",
                (sender, f"confirm:{action}"),
            ).fetchone()
        return row is not None and row[0] >= since

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's answered questions: in total, today, on how many days, this week."""
        now = self._clock()
        rows = self._read(
            "SELECT COALESCE(SUM(questions), 0),"
            " COALESCE(SUM(CASE WHEN day = ? THEN questions END), 0), COUNT(*),"
            " COALESCE(SUM(CASE WHEN day >= ? THEN questions END), 0)"
            " FROM usage WHERE sender = ?",
            (utc_day(now), utc_day(window_start(now, 7)), sender),
            deadline,
        )
        return SenderUsage(*(int(v) for v in rows[0]))

    def stats(self, days: int, top: int, deadline: Deadline) -> UsageStats:
        """Usage over the last `days` UTC days (today included)."""
        now = self._clock()
        since = window_start(now, days)
        first_day = utc_day(since)
        per_day = self._read(
            "SELECT day, SUM(questions), COUNT(DISTINCT sender) FROM usage WHERE day >= ?"
            " GROUP BY day ORDER BY day",
            (first_day,),
            deadline,
        )
        active = self._read(
            "SELECT COUNT(DISTINCT sender) FROM usage WHERE day >= ?", (first_day,), deadline
        )
        asked = self._read(
            "SELECT question, COUNT(*) FROM answers WHERE created_at >= ? AND question <> ''"
            " GROUP BY question",
            (since,),
            deadline,
        )
        kinds = self._read(
            "SELECT kind, COUNT(*) FROM answers WHERE created_at >= ? GROUP BY kind",
            (since,),
            deadline,
        )
        latencies = self._read(
            "SELECT latency_ms FROM answers WHERE created_at >= ? AND latency_ms IS NOT NULL",
            (since,),
            deadline,
        )
        feedback = self._read(
            "SELECT COUNT(*), COUNT(CASE WHEN rating = 'up' THEN 1 END),"
            " COUNT(CASE WHEN rating = 'down' THEN 1 END) FROM feedback WHERE created_at >= ?",
            (since,),
            deadline,
        )
        total, up, down = (int(v) for v in feedback[0])
        return UsageStats(
            days=every_day(per_day, now, days),
            active_senders=int(active[0][0]),
            top_questions=most_asked(asked, top),
            feedback=total,
            answers=AnswerCounts.from_rows(kinds),
            median_answer_ms=median_ms(v for (v,) in latencies),
            thumbs_up=up,
            thumbs_down=down,
        )

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
        with self._tx(deadline) as db:
            if rating and sid:
                db.execute(
                    "DELETE FROM feedback WHERE sender = ? AND message_sid = ? AND rating <> ''",
                    (sender, sid),
                )
            db.execute(
                "INSERT INTO feedback (sender, conversation, text, created_at, rating,"
                " message_sid, question, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sender, conversation, text, self._clock(), rating, sid, question, answer),
            )

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The newest feedback first."""
        rows = self._read(
            "SELECT sender, text, created_at, rating, question, answer, message_sid"
            " FROM feedback ORDER BY id DESC LIMIT ?",
            (max(0, limit),),
            deadline,
        )
        return [Feedback(*row) for row in rows]

    def cached_answer(
        self, question: str, knowledge_version: str, max_age_seconds: float, deadline: Deadline
    ) -> CachedAnswer | None:
        """A fresh enough cache entry for this question and knowledge version."""
        rows = self._read(
            "SELECT answer, sources FROM answer_cache WHERE question = ?"
            " AND knowledge_version = ? AND created_at >= ?",
            (question, knowledge_version, self._clock() - max_age_seconds),
            deadline,
        )
        return CachedAnswer(rows[0][0], tuple(json.loads(rows[0][1]))) if rows else None

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
        with self._tx(deadline) as db:
            db.execute(
                "DELETE FROM answer_cache WHERE created_at < ? OR knowledge_version <> ?",
                (now - max_age_seconds, knowledge_version),
            )
            db.execute(
                "INSERT OR REPLACE INTO answer_cache (question, knowledge_version, answer,"
                " sources, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    question,
                    knowledge_version,
                    answer.text,
                    json.dumps(list(answer.sources)),
                    created_by,
                    now,
                ),
            )
