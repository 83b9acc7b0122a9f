"""The HistoryStore protocol: turns, deliveries, notices, usage, feedback, the answer cache."""

from __future__ import annotations

import logging
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.models import Turn

logger = logging.getLogger(__name__)

# A claim older than this belonged to a request that died; any response finishes in 15 s.
STALE_CLAIM_SECONDS = 30.0
# A delivery's reply text is kept only while Twilio can still redeliver the request: Twilio
# gives up 15 s after its first attempt, retries included (connection overrides: total time
# `tt` defaults to, and is capped at, 15,000 ms; `rc` at most 5 retries within it). Ten
# minutes leaves a wide margin (clock skew between instances, the stale-claim handover).
REPLY_KEEP_SECONDS = 10 * 60.0
# The MessageSid (no text) is kept a month so a replayed request is still recognised:
# commands (reset, feedback, forget me) leave no row in the never-pruned answers log, which
# recognises answered questions for ever. A month of ids is a small table.
DELIVERY_KEEP_SECONDS = 30 * 86_400.0
# `claim` prunes deliveries at most this often per store instance (per process)...
PRUNE_EVERY_SECONDS = 60.0
# ...touching at most this many rows per step, so even a years-old backlog costs a request
# a few milliseconds; a full step makes the next claim prune again.
PRUNE_BATCH = 500
# What one pruning step may take of the request's budget before it gives up for a minute.
PRUNE_SECONDS = 0.5


@dataclass(frozen=True)
class Delivery:
    """What is known about one Twilio MessageSid."""

    state: str  # "new" (the caller owns it now), "pending" (another request has it), "done"
    reply: str = ""


@dataclass(frozen=True)
class DayUsage:
    """Questions answered on one UTC day, and by how many senders."""

    day: str  # YYYY-MM-DD, UTC
    questions: int
    senders: int


@dataclass(frozen=True)
class AnswerRecord:
    """How one answer was made, kept with the exchange for the team's statistics."""

    backend: str = ""  # "mistral", "extractive", "cache", ... ("" when unknown)
    fallback_reason: str = ""  # why a fallback answered; "" when the first choice did
    latency_ms: float | None = None  # from the question's arrival in the use case

    @property
    def kind(self) -> str:
        """ "model", "fallback", "excerpts" (no model configured), "cache" or "unknown"."""
        if self.backend == "cache":
            return "cache"
        if self.fallback_reason:
            return "fallback"
        if self.backend in ("extractive", "none"):
            return "excerpts"
        return "model" if self.backend else "unknown"


@dataclass(frozen=True)
class AnswerCounts:
    """Answers in a window by how they were made."""

    model: int = 0
    fallback: int = 0
    excerpts: int = 0  # extractive answers when no model is configured
    cache: int = 0

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int]]) -> AnswerCounts:
        """(kind, count) rows; kinds outside the four ("unknown") are left out."""
        known = {name: 0 for name in ("model", "fallback", "excerpts", "cache")}
        for kind, count in rows:
            if kind in known:
                known[kind] += int(count)
        return cls(**known)


@dataclass(frozen=True)
class UsageStats:
    """Usage over a window of days, for the `stats` command and the admin view."""

    days: tuple[DayUsage, ...]  # every day of the window, oldest first, zeros included
    active_senders: int  # distinct senders over the whole window
    # (normalised question, times asked), most asked first; forgotten senders' are gone
    top_questions: tuple[tuple[str, int], ...]
    feedback: int  # feedback entries received in the window (ratings included)
    answers: AnswerCounts = field(default_factory=AnswerCounts)
    median_answer_ms: float | None = None  # over answers with a recorded time
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def questions(self) -> int:
        """All questions answered in the window."""
        return sum(day.questions for day in self.days)


@dataclass(frozen=True)
class SenderUsage:
    """One sender's counters (kept by `forget` only in anonymised form)."""

    questions: int
    today: int
    active_days: int
    week: int = 0  # the last 7 UTC days, today included


@dataclass(frozen=True)
class Exchange:
    """A stored question and the answer it got: what feedback refers to."""

    message_sid: str
    question: str
    answer: str
    answered_at: float


NO_EXCHANGE = Exchange("", "", "", 0.0)  # what feedback refers to when there is no answer


@dataclass(frozen=True)
class Feedback:
    """One `feedback <text>` or quick rating a sender left for the team."""

    sender: str
    text: str
    created_at: float
    rating: str = ""  # "up" or "down" for 👍/👎 (good/bad); "" for written feedback
    question: str = ""  # the exchange it refers to ("" when there was none)
    answer: str = ""
    message_sid: str = ""


@dataclass(frozen=True)
class CachedAnswer:
    """An answer the cache can serve again."""

    text: str
    sources: tuple[str, ...]


class HistoryStore(Protocol):
    """Per-conversation memory. Every method may raise HistoryUnavailable."""

    backend: str

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Record a delivery as in progress, or report the one already recorded.

        Exactly one of several concurrent callers gets state "new"; a pending claim older
        than the store's stale limit is handed over so a crashed request cannot wedge it.
        A MessageSid no longer in `deliveries` but in the answers log (answered before the
        ids were pruned) is "done" with no reply: a replay, answered by nothing. Claims
        also prune `deliveries` now and then, in bounded steps: reply text after
        REPLY_KEEP_SECONDS, the row after DELIVERY_KEEP_SECONDS.
        """
        ...

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Store the reply given to a claimed delivery, so redeliveries repeat it (while
        Twilio may redeliver: REPLY_KEEP_SECONDS)."""
        ...

    def release(self, message_sid: str) -> None:
        """Drop an unfinished claim so a redelivery is processed afresh."""
        ...

    def delivery(self, message_sid: str, deadline: Deadline) -> Delivery | None:
        """The delivery's current state, or None if never claimed."""
        ...

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        ...

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
        """Store a question and its answer atomically, then prune to `keep` messages.

        A new exchange (not a redelivery) is also counted in `usage` and logged, with how
        it was answered (`record`), in the answers log that `stats` reads; the log is not
        pruned with the conversation.
        """
        ...

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored exchange (what feedback refers to), or None; with
        `within_seconds`, only one answered that recently."""
        ...

    def last_sources(self, conversation: str, deadline: Deadline) -> tuple[str, ...] | None:
        """Sources of the conversation's last stored answer; None if there is none."""
        ...

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Forget one conversation's turns and blank its deliveries' reply text; returns
        how many turns were deleted."""
        ...

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, notices, feedback and the cache entries they created;
        returns how many rows went (notices not counted).

        Usage counters and the answers log stay (the team's numbers must not change) but
        lose the link to the number, and the log loses the question text. Deliveries keep
        only their MessageSid (reply text blanked, the number replaced by the same
        anonymous key), so a replayed request is still recognised and answered by nothing.
        """
        ...

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """True (and remembered) when `kind` was not sent to `sender` within `every_seconds`."""
        ...

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember that `sender` was asked to confirm `action` (now)."""
        ...

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """True, once, if `sender` was asked to confirm `action` within `within_seconds`."""
        ...

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's question counters (answered questions, counted once per MessageSid)."""
        ...

    def stats(self, days: int, top: int, deadline: Deadline) -> UsageStats:
        """The team's usage over the last `days` UTC days (today included)."""
        ...

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
        """Keep a sender's feedback for the team, linked to the exchange it is `about`.

        A rating replaces the sender's earlier rating of the same exchange (👍 then 👎 is a
        change of mind, not two votes).
        """
        ...

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The latest `limit` feedback entries, newest first."""
        ...

    def cached_answer(
        self, question: str, knowledge_version: str, max_age_seconds: float, deadline: Deadline
    ) -> CachedAnswer | None:
        """The answer cached for a normalised question against this knowledge version, if
        it is younger than `max_age_seconds`."""
        ...

    def cache_answer(
        self,
        question: str,
        knowledge_version: str,
        answer: CachedAnswer,
        created_by: str,
        max_age_seconds: float,
        deadline: Deadline,
    ) -> None:
        """Cache an answer (replacing any for the same key); entries older than
        `max_age_seconds` or for another knowledge version are dropped meanwhile."""
        ...

    def ping(self) -> None:
        """Cheap liveness check; raises HistoryUnavailable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# --- helpers both stores use, so their answers are identical ---------------------------

SECONDS_PER_DAY = 86_400


def utc_day(timestamp: float) -> str:
    """The UTC calendar day of a unix timestamp, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def window_start(now: float, days: int) -> float:
    """The unix time at which a window of `days` whole UTC days ending today begins."""
    midnight = now - now % SECONDS_PER_DAY
    return midnight - (max(1, days) - 1) * SECONDS_PER_DAY


_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalise_question(text: str) -> str:
    """The form under which questions count as the same (stats, the answer cache): case
    folded, punctuation removed, spaces collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


def most_asked(rows: Iterable[tuple[str, int]], top: int) -> tuple[tuple[str, int], ...]:
    """Merge (question, count) rows by normalised text; most asked first, ties by text."""
    counts: Counter[str] = Counter()
    for text, count in rows:
        key = normalise_question(text)
        if key:
            counts[key] += int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[: max(0, top)])


def every_day(rows: Iterable[tuple[str, int, int]], now: float, days: int) -> tuple[DayUsage, ...]:
    """(day, questions, senders) rows as one DayUsage per day of the window, zeros included."""
    found = {str(day): (int(q), int(n)) for day, q, n in rows}
    start = window_start(now, days)
    window = [utc_day(start + i * SECONDS_PER_DAY) for i in range(max(1, days))]
    return tuple(DayUsage(day, *found.get(day, (0, 0))) for day in window)


def median_ms(values: Iterable[float | None]) -> float | None:
    """The median of the recorded times, rounded to 0.1 ms; None when there are none."""
    recorded = [float(v) for v in values if v is not None]
    return round(statistics.median(recorded), 1) if recorded else None


def anonymous_key() -> str:
    """The key a forgotten sender's counters and feedback move to: unlinkable, unique."""
    return "forgotten:" + uuid.uuid4().hex[:16]


class PruneSchedule:
    """Runs a store's bounded pruning step at most every PRUNE_EVERY_SECONDS (per process),
    sooner while a backlog is left (a step that was full)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_at = float("-inf")  # the first claim of a process prunes

    def run_if_due(self, now: float, step: Callable[[], int]) -> None:
        """Run `step` (it returns the rows it touched) if due; a failure costs a log line."""
        with self._lock:
            if now < self._next_at:
                return
            self._next_at = now + PRUNE_EVERY_SECONDS
        try:
            touched = step()
        except HistoryUnavailable as exc:
            logger.warning("history: pruning deliveries failed, retrying in a minute: %s", exc)
            return
        if touched >= PRUNE_BATCH:
            with self._lock:
                self._next_at = now
