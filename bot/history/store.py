"""What the use case needs from history, one small protocol per concern, and HistoryStore,
their union; how a store is made of one part per concern; the pruning of deliveries.

Every method may raise HistoryUnavailable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.records import (
    CachedAnswer,
    Delivery,
    Exchange,
    ExchangeRecord,
    Feedback,
    SenderUsage,
    UsageStats,
)
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
# `sources` looks this far back for the latest answer its reader may see (collections).
SOURCES_LOOKBACK = 20
# `claim` prunes deliveries at most this often per store instance (per process)...
PRUNE_EVERY_SECONDS = 60.0
# ...touching at most this many rows per step, so even a years-old backlog costs a request
# a few milliseconds; a full step makes the next claim prune again.
PRUNE_BATCH = 500
# What one pruning step may take of the request's budget before it gives up for a minute.
PRUNE_SECONDS = 0.5


class Deliveries(Protocol):
    """Twilio MessageSids claimed, answered or released: each message is answered once."""

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


class Conversations(Protocol):
    """The turns of each conversation, pruned to the last few, and what they answered."""

    def recent(self, conversation: str, limit: int, deadline: Deadline) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        ...

    def append_exchange(self, exchange: ExchangeRecord, deadline: Deadline) -> None:
        """Store a question and its answer atomically, then prune to `exchange.keep`
        messages.

        A new exchange (not a redelivery) is also counted in `usage` and logged, with how
        it was answered, in the answers log that `stats` reads; the log is not pruned with
        the conversation. In the same transaction, redelivery or not: with
        `exchange.reply` the delivery is completed (as Deliveries.complete), with
        `exchange.cache` the answer is cached for `exchange.sender` (as
        AnswerCacheStore.cache_answer).
        """
        ...

    def last_sources(
        self, conversation: str, deadline: Deadline, readable: frozenset[str] | None = None
    ) -> tuple[str, ...] | None:
        """Sources of the conversation's last stored answer that a reader of `readable` may
        see (bot/readers.fits: None reads everything); None if there is none."""
        ...

    def clear(self, conversation: str, deadline: Deadline) -> int:
        """Forget one conversation's turns and blank its deliveries' reply text; returns
        how many turns were deleted."""
        ...

    def last_answer(
        self, sender: str, deadline: Deadline, within_seconds: float | None = None
    ) -> Exchange | None:
        """The sender's latest stored exchange (what feedback refers to), or None; with
        `within_seconds`, only one answered that recently."""
        ...


class Notices(Protocol):
    """Rate-limited notices to a sender, and confirmations they were asked for."""

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """True (and remembered) when `kind` was not sent to `sender` within `every_seconds`."""
        ...

    def request_confirmation(self, sender: str, action: str, deadline: Deadline) -> None:
        """Remember that `sender` was asked to confirm `action` (now)."""
        ...

    def confirm(self, sender: str, action: str, within_seconds: float, deadline: Deadline) -> bool:
        """True, once, if `sender` was asked to confirm `action` within `within_seconds`."""
        ...


class TeamLog(Protocol):
    """The team's numbers and feedback, and forgetting a sender while keeping the numbers."""

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

    def forget(self, sender: str) -> int:
        """Delete a sender's turns, notices, feedback and the cache entries they created;
        returns how many rows went (notices not counted).

        Usage counters and the answers log stay (the team's numbers must not change) but
        lose the link to the number, and the log loses the question text. Deliveries keep
        only their MessageSid (reply text blanked, the number replaced by the same
        anonymous key), so a replayed request is still recognised and answered by nothing.
        """
        ...


class AnswerCacheStore(Protocol):
    """First-turn answers kept per question and knowledge version, shared by all workers."""

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


class HistoryStore(Deliveries, Conversations, Notices, TeamLog, AnswerCacheStore, Protocol):
    """Every concern on one backend, as the factory opens it and /health probes it."""

    backend: str

    def ping(self) -> None:
        """Cheap liveness check; raises HistoryUnavailable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class ComposedStore:
    """The concern protocols of a store made of one part per concern: each method is the
    bound method of the part that implements it (the backend adds backend, ping, close)."""

    def __init__(
        self,
        deliveries: Deliveries,
        conversations: Conversations,
        notices: Notices,
        team: TeamLog,
        cache: AnswerCacheStore,
    ) -> None:
        self.claim = deliveries.claim
        self.complete = deliveries.complete
        self.release = deliveries.release
        self.delivery = deliveries.delivery
        self.recent = conversations.recent
        self.append_exchange = conversations.append_exchange
        self.last_sources = conversations.last_sources
        self.clear = conversations.clear
        self.last_answer = conversations.last_answer
        self.notice_due = notices.notice_due
        self.request_confirmation = notices.request_confirmation
        self.confirm = notices.confirm
        self.usage = team.usage
        self.stats = team.stats
        self.add_feedback = team.add_feedback
        self.recent_feedback = team.recent_feedback
        self.forget = team.forget
        self.cached_answer = cache.cached_answer
        self.cache_answer = cache.cache_answer


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
