"""The HistoryStore protocol: conversation turns, deliveries and per-sender notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.deadline import Deadline
from bot.models import Turn


class HistoryUnavailable(Exception):
    """The history backend cannot answer right now; the bot answers without history."""


@dataclass(frozen=True)
class Delivery:
    """What is known about one Twilio MessageSid."""

    state: str  # "new" (the caller owns it now), "pending" (another request has it), "done"
    reply: str = ""


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
        """Delete every turn and delivery of a sender; returns how many rows went."""
        ...

    def notice_due(self, sender: str, kind: str, every_seconds: float, deadline: Deadline) -> bool:
        """True (and remembered) when `kind` was not sent to `sender` within `every_seconds`."""
        ...

    def ping(self) -> None:
        """Cheap liveness check; raises HistoryUnavailable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
