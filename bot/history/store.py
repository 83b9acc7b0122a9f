"""The HistoryStore protocol: conversation turns, deliveries, notices, usage and feedback."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.deadline import Deadline
from bot.models import Turn

# A claim older than this belonged to a request that died; any response finishes in 15 s.
STALE_CLAIM_SECONDS = 30.0


class HistoryUnavailable(Exception):
    """The history backend cannot answer right now; the bot answers without history."""


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
class UsageStats:
    """Usage over a window of days, for the `stats` command and the admin view."""

    days: tuple[DayUsage, ...]  # oldest first; days without questions are absent
    active_senders: int  # distinct senders over the whole window
    # (question, times asked), most asked first, over the history still stored (pruned)
    top_questions: tuple[tuple[str, int], ...]
    feedback: int  # feedback entries received in the window


@dataclass(frozen=True)
class SenderUsage:
    """One sender's counters (kept by `forget` only in anonymised form)."""

    questions: int
    today: int
    active_days: int


@dataclass(frozen=True)
class Feedback:
    """One `feedback <text>` a sender left for the team."""

    sender: str
    text: str
    created_at: float


class HistoryStore(Protocol):
    """Per-conversation memory. Every method may raise HistoryUnavailable."""

    backend: str

    def claim(self, message_sid: str, conversation: str, deadline: Deadline) -> Delivery:
        """Record a delivery as in progress, or report the one already recorded.

        Exactly one of several concurrent callers gets state "new"; a pending claim older
        than the store's stale limit is handed over so a crashed request cannot wedge it.
        """
        ...

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Store the reply given to a claimed delivery, so redeliveries repeat it."""
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
    ) -> None:
        """Store a question and its answer atomically, then prune to `keep` messages."""
        ...

    def last_sources(self, conversation: str, deadline: Deadline) -> tuple[str, ...] | None:
        """Sources of the conversation's last stored answer; None if there is none."""
        ...

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Forget one conversation's turns; returns how many were deleted."""
        ...

    def forget(self, sender: str) -> int:
        """Delete every turn and delivery of a sender; returns how many rows went.

        Usage counters and feedback stay (the team's numbers must not change) but lose the
        link to the number: they move to an anonymous key.
        """
        ...

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """True (and remembered) when `kind` was not sent to `sender` within `every_seconds`."""
        ...

    def usage(self, sender: str, deadline: Deadline) -> SenderUsage:
        """A sender's question counters (answered questions, counted once per MessageSid)."""
        ...

    def stats(self, days: int, top: int, deadline: Deadline) -> UsageStats:
        """Questions per day, active senders and the `top` most asked questions."""
        ...

    def add_feedback(self, sender: str, conversation: str, text: str, deadline: Deadline) -> None:
        """Keep a sender's feedback for the team."""
        ...

    def recent_feedback(self, limit: int, deadline: Deadline) -> list[Feedback]:
        """The latest `limit` feedback entries, newest first."""
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


_PUNCTUATION_END = re.compile(r"[\s?!.,;:]+$")


def normalise_question(text: str) -> str:
    """The form under which questions count as the same: case, spacing, end punctuation."""
    return _PUNCTUATION_END.sub("", " ".join(text.casefold().split()))


def most_asked(rows: Iterable[tuple[str, int]], top: int) -> tuple[tuple[str, int], ...]:
    """Merge (question, count) rows by normalised text; most asked first, ties by text."""
    counts: Counter[str] = Counter()
    for text, count in rows:
        key = normalise_question(text)
        if key:
            counts[key] += int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[: max(0, top)])


def anonymous_key() -> str:
    """The key a forgotten sender's counters and feedback move to: unlinkable, unique."""
    return "forgotten:" + uuid.uuid4().hex[:16]
