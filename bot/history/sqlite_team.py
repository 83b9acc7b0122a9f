"""The SQLite store's other parts: notices and confirmations, the team's log (usage,
stats, feedback, forgetting), the answer cache."""

from __future__ import annotations

import json
import sqlite3

from bot.deadline import Deadline
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
from bot.history.sqlite_db import SqliteDatabase, SqlitePart

FILE_ANSWER = (
    "INSERT OR REPLACE INTO answer_cache (question, knowledge_version, answer, sources,"
    " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
# Expired entries, found through answer_cache_by_time: nothing to read when none expired.
DROP_EXPIRED = "DELETE FROM answer_cache WHERE created_at < ?"
# Entries of other knowledge versions: a scan of the table, so only when the version changes.
DROP_OTHER_VERSIONS = "DELETE FROM answer_cache WHERE knowledge_version <> ?"


def file_answer(
    database: SqliteDatabase, db: sqlite3.Connection, entry: CacheEntry, by: str, now: float
) -> None:
    """Upsert one cache entry inside the caller's transaction, dropping expired entries and,
    the first time this process files under a knowledge version, every other version's."""
    db.execute(DROP_EXPIRED, (now - entry.max_age_seconds,))
    if database.cache_version != entry.knowledge_version:
        db.execute(DROP_OTHER_VERSIONS, (entry.knowledge_version,))
    answer = entry.answer
    db.execute(
        FILE_ANSWER,
        (
            entry.question,
            entry.knowledge_version,
            answer.text,
            json.dumps(list(answer.sources)),
            by,
            now,
        ),
    )


class SqliteNotices(SqlitePart):
    """Notices and confirmation requests in SQLite (one `notices` row per sender and kind)."""

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """Record and allow a notice at most once per `every_seconds` per sender."""
        now = self.clock()
        with self.db.tx(deadline) as db:
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

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember the request as a notice of kind 'confirm:<action>'."""
        with self.db.tx(deadline) as db:
            db.execute(
                "INSERT OR REPLACE INTO notices (sender, kind, sent_at) VALUES (?, ?, ?)",
                (sender, f"confirm:{action}", self.clock()),
            )

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """Consume a pending confirmation request; True if it was recent enough."""
        since = self.clock() - within_seconds
        with self.db.tx(deadline) as db:
            row = db.execute(
                "DELETE FROM notices WHERE sender = ? AND kind = ? RETURNING sent_at",
                (sender, f"confirm:{action}"),
            ).fetchone()
        return row is not None and row[0] >= since


class SqliteTeamLog(SqlitePart):
    """Usage, stats and feedback in SQLite; `forget` anonymises what the numbers need."""

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's answered questions: in total, today, on how many days, this week."""
        now = self.clock()
        rows = self.db.read(
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
        now = self.clock()
        since = window_start(now, days)
        first_day = utc_day(since)
        per_day = self.db.read(
            "SELECT day, SUM(questions), COUNT(DISTINCT sender) FROM usage WHERE day >= ?"
            " GROUP BY day ORDER BY day",
            (first_day,),
            deadline,
        )
        active = self.db.read(
            "SELECT COUNT(DISTINCT sender) FROM usage WHERE day >= ?", (first_day,), deadline
        )
        asked = self.db.read(
            "SELECT question, COUNT(*) FROM answers WHERE created_at >= ? AND question <> ''"
            " GROUP BY question",
            (since,),
            deadline,
        )
        kinds = self.db.read(
            "SELECT kind, COUNT(*) FROM answers WHERE created_at >= ? GROUP BY kind",
            (since,),
            deadline,
        )
        latencies = self.db.read(
            "SELECT latency_ms FROM answers WHERE created_at >= ? AND latency_ms IS NOT NULL",
            (since,),
            deadline,
        )
        feedback = self.db.read(
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
        with self.db.tx(deadline) as db:
            if rating and sid:
                db.execute(
                    "DELETE FROM feedback WHERE sender = ? AND message_sid = ? AND rating <> ''",
                    (sender, sid),
                )
            db.execute(
                "INSERT INTO feedback (sender, conversation, text, created_at, rating,"
                " message_sid, question, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sender, conversation, text, self.clock(), rating, sid, question, answer),
            )

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The newest feedback first."""
        rows = self.db.read(
            "SELECT sender, text, created_at, rating, question, answer, message_sid"
            " FROM feedback ORDER BY id DESC LIMIT ?",
            (max(0, limit),),
            deadline,
        )
        return [Feedback(*row) for row in rows]

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, notices, feedback and cache entries; their counters,
        answers log rows and delivery ids stay, anonymised (no text, no number)."""
        anonymous = anonymous_key()
        with self.db.tx(Deadline(10)) as db:
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


class SqliteAnswerCache(SqlitePart):
    """The answer cache in SQLite (one `answer_cache` row per question and version)."""

    def cached_answer(
        self, question: str, knowledge_version: str, max_age_seconds: float, deadline: Deadline
    ) -> CachedAnswer | None:
        """A fresh enough cache entry for this question and knowledge version."""
        rows = self.db.read(
            "SELECT answer, sources FROM answer_cache WHERE question = ?"
            " AND knowledge_version = ? AND created_at >= ?",
            (question, knowledge_version, self.clock() - max_age_seconds),
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
        entry = CacheEntry(question, knowledge_version, answer, max_age_seconds)
        with self.db.tx(deadline) as db:
            file_answer(self.db, db, entry, created_by, self.clock())
        self.db.cache_version = knowledge_version
