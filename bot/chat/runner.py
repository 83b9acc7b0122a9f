"""Running chat commands: help, reset, sources, stats, feedback, ratings and `forget me`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from bot.chat.access import AccessPolicy
from bot.chat.commands import (
    STATS_DAYS,
    STATS_TOP,
    Command,
    member_stats_text,
    sources_text,
    team_stats_text,
)
from bot.chat.degrade import without_history
from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.store import Conversations, Notices, TeamLog
from bot.models import InboundMessage, Reply
from bot.text import mask_number
from bot.texts import (
    FEEDBACK_HOW,
    FEEDBACK_THANKS,
    FORGET_ASK,
    FORGET_DONE,
    HELP_TEXT,
    MEMORY_DOWN,
    NOTHING_TO_RATE,
    RATED,
    RESET_DONE,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

# 👍/👎 (or good/bad) rate the sender's last answer if it came at most this long ago.
QUICK_FEEDBACK_SECONDS = 30 * 60
# `forget me yes` must follow `forget me` within this time.
FORGET_CONFIRM_SECONDS = 10 * 60
MAX_FEEDBACK_CHARS = 1000
RATING_TEXT = {"up": "👍", "down": "👎"}


class CommandHistory(Conversations, Notices, TeamLog, Protocol):
    """What the commands need from history: turns, confirmations, the team's log."""


class CommandRunner:
    """Turns a parsed Command into the Reply; degrades to MEMORY_DOWN without the store."""

    def __init__(self, history: CommandHistory, access: AccessPolicy, trigger: str) -> None:
        self.history = history
        self.access = access
        self.trigger = trigger
        self._actions: dict[str, Callable[[InboundMessage, str, Deadline], str]] = {
            "help": lambda msg, text, deadline: HELP_TEXT.format(trigger=trigger),
            "reset": self._reset,
            "sources": self._sources,
            "stats": self._stats,
            "feedback": self._feedback,
            "rate": self._rate,
            "forget": self._ask_to_forget,
            "forget-confirm": self._forget,
        }

    def run(self, command: Command, msg: InboundMessage, deadline: Deadline) -> Reply:
        """The reply to one command."""
        return Reply(self._actions[command.name](msg, command.text, deadline), kind="command")

    def rate_unmentioned(
        self, msg: InboundMessage, rating: str, deadline: Deadline
    ) -> Reply | None:
        """👍/👎 sent without the trigger: feedback if an answer came just before, else None
        (and the message is treated as any other without a mention)."""
        try:
            text = self._record_rating(msg, rating, deadline)
        except HistoryUnavailable as exc:
            logger.warning("history unavailable: %s", exc)
            return None
        return Reply(text, kind="command") if text else None

    # -- the commands ------------------------------------------------------------------
    def _reset(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        cleared = without_history(None, lambda: self.history.clear(msg.conversation, deadline))
        return MEMORY_DOWN if cleared is None else RESET_DONE

    def _sources(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        try:
            # With collections, the latest answer this sender may read the sources of: in
            # a group another member's may name documents this sender may not read.
            readable = self.access.readers.readable(msg.sender, msg.is_group)
            return sources_text(self.history.last_sources(msg.conversation, deadline, readable))
        except HistoryUnavailable as exc:
            logger.warning("history unavailable: %s", exc)
            return MEMORY_DOWN

    def _stats(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        """The team's usage for admins, the sender's own counters for everyone else."""
        if self.access.is_admin(msg.sender):
            stats = without_history(
                None, lambda: self.history.stats(STATS_DAYS, STATS_TOP, deadline)
            )
            return MEMORY_DOWN if stats is None else team_stats_text(stats)
        usage = without_history(None, lambda: self.history.usage(msg.sender, deadline))
        return MEMORY_DOWN if usage is None else member_stats_text(usage)

    def _feedback(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        """Keep the text with the exchange it most likely refers to: the last answer."""
        if not text:
            return FEEDBACK_HOW.format(trigger=self.trigger)

        def store() -> str:
            about = self.history.last_answer(msg.sender, deadline)
            self.history.add_feedback(
                msg.sender, msg.conversation, text[:MAX_FEEDBACK_CHARS], deadline, about=about
            )
            return FEEDBACK_THANKS

        return without_history(MEMORY_DOWN, store)

    def _rate(self, msg: InboundMessage, rating: str, deadline: Deadline) -> str:
        text = without_history(MEMORY_DOWN, lambda: self._record_rating(msg, rating, deadline))
        return text or NOTHING_TO_RATE.format(trigger=self.trigger)

    def _record_rating(self, msg: InboundMessage, rating: str, deadline: Deadline) -> str:
        """Rate the sender's answer of the last few minutes; "" when there is none."""
        about = self.history.last_answer(msg.sender, deadline, QUICK_FEEDBACK_SECONDS)
        if about is None:
            return ""
        self.history.add_feedback(
            msg.sender, msg.conversation, RATING_TEXT[rating], deadline, rating=rating, about=about
        )
        logger.info("rating %s from %s", rating, mask_number(msg.sender))
        return RATED[rating].format(trigger=self.trigger)

    def _ask_to_forget(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        """Step one of `forget me`: nothing is deleted until the sender confirms."""
        asked = without_history(
            False,
            lambda: self.history.request_confirmation(msg.sender, "forget", deadline) or True,
        )
        if not asked:
            return MEMORY_DOWN
        return FORGET_ASK.format(trigger=self.trigger, minutes=FORGET_CONFIRM_SECONDS // 60)

    def _forget(self, msg: InboundMessage, text: str, deadline: Deadline) -> str:
        """Step two: with a fresh confirmation request, delete; without one, ask (again)."""
        confirmed = without_history(
            None,
            lambda: self.history.confirm(msg.sender, "forget", FORGET_CONFIRM_SECONDS, deadline),
        )
        if confirmed is None:
            return MEMORY_DOWN
        if not confirmed:
            return self._ask_to_forget(msg, text, deadline)
        # This very delivery keeps its id (anonymised): a redelivery repeats the reply, a
        # later replay gets none, and once the id is pruned a replay finds no confirmation
        # request and asks again, which deletes nothing.
        gone = without_history(None, lambda: self.history.forget(msg.sender))
        if gone is None:
            return MEMORY_DOWN
        logger.info("forgot %s at their request (%d rows)", mask_number(msg.sender), gone)
        return FORGET_DONE
