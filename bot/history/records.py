"""What the history stores take and give: plain frozen data, and the helpers both stores
use to make it, so that their answers are identical."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Delivery:
    """What is known about one Twilio MessageSid."""

    state: str  # "new" (the caller owns it now), "pending" (another request has it), "done"
    reply: str = ""


@dataclass(frozen=True)
class CachedAnswer:
    """An answer the cache can serve again."""

    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class CacheEntry:
    """An answer to file in the answer cache (AnswerCacheStore.cache_answer's arguments)."""

    question: str  # the cache key's question
    knowledge_version: str
    answer: CachedAnswer
    max_age_seconds: float


@dataclass(frozen=True)
class ExchangeRecord:
    """A finished exchange to store: the question, its answer, and how it was made; with
    what else the message settles, so that it costs one write transaction after its claim."""

    conversation: str
    sender: str
    message_sid: str
    question: str
    answer: str
    sources: tuple[str, ...]
    keep: int  # the conversation is pruned to this many messages (the answers log is not)
    backend: str = ""  # "mistral", "extractive", "cache", ... ("" when unknown)
    fallback_reason: str = ""  # why a fallback answered; "" when the first choice did
    latency_ms: float | None = None  # from the question's arrival in the use case
    # Settled in the same transaction: the claimed delivery of `message_sid` completed with
    # this reply (Deliveries.complete), and an answer filed in the cache for `sender`.
    reply: str | None = None
    cache: CacheEntry | None = None
    # The collections the answer could draw from (bot/readers.cache_scope): whoever reads
    # the conversation later is shown it only if they may read them all.
    readers: str = ""

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
class DayUsage:
    """Questions answered on one UTC day, and by how many senders."""

    day: str  # YYYY-MM-DD, UTC
    questions: int
    senders: int


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


# --- helpers both stores use, so their answers are identical ---------------------------


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
