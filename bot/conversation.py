"""handle(message) -> Reply: the whole use case, deadline-aware, without Flask."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.access import AccessPolicy
from bot.answer.base import Answerer
from bot.answer.extractive import ExtractiveAnswerer
from bot.commands import (
    HELP_TEXT,
    MEDIA_REPLY,
    MENTION_HINT,
    STATS_DAYS,
    STATS_TOP,
    member_stats_text,
    parse_command,
    sources_text,
    team_stats_text,
)
from bot.deadline import Deadline
from bot.followup import search_query
from bot.history.store import HistoryStore, HistoryUnavailable
from bot.inbound import find_mention, mask_number
from bot.knowledge.store import KnowledgeStore, KnowledgeUnavailable
from bot.metrics import Metrics
from bot.models import Answer, InboundMessage, Passage, Reply, Turn
from bot.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

NOTICE_EVERY_SECONDS = 24 * 3600
# Time kept back from the model for storing the exchange and writing the TwiML.
FINISH_RESERVE_SECONDS = 0.3
# While another request answers the same MessageSid, wait for its reply this often.
DUPLICATE_POLL_SECONDS = 0.05
SORRY = "Sorry, something went wrong on my side. Please try again in a minute."
KNOWLEDGE_DOWN = (
    "The knowledge base is unavailable right now, so I can't look that up. "
    "Please try again in a few minutes."
)
MEMORY_DOWN = "I can't reach my conversation memory right now. Please try again in a minute."
RESET_DONE = "Done: I've forgotten our conversation. Ask me something new!"
TRUNCATED_NOTE = "_(Your question was long, so I only read its first {n} characters.)_"


@dataclass
class ConversationHandler:
    """Turns one verified InboundMessage into a Reply, using our own store protocols."""

    settings: Settings
    history: HistoryStore
    knowledge: KnowledgeStore
    answerer: Answerer
    metrics: Metrics

    def __post_init__(self) -> None:
        self.access = AccessPolicy(self.settings)
        self._last_resort = ExtractiveAnswerer()
        self._trigger = self.settings.trigger_words[0]

    def handle(self, msg: InboundMessage, deadline: Deadline) -> Reply:
        """Reply to a message exactly once per MessageSid, within the deadline."""
        self.metrics.incr("messages")
        self.metrics.seen(msg.sender)
        owned = True
        try:
            delivery = self.history.claim(msg.message_sid, msg.conversation, deadline)
            if delivery.state != "new":
                self.metrics.incr("duplicates")
                return self._repeat(msg, delivery.state, delivery.reply, deadline)
        except HistoryUnavailable as exc:
            # Without the store we cannot de-duplicate; answering beats staying silent.
            logger.warning("history unavailable for de-duplication: %s", exc)
            owned = False
        try:
            reply = self._respond(msg, deadline)
        except Exception:
            logger.exception("unexpected error handling a message from %s", mask(msg))
            self.metrics.incr("errors")
            if owned:
                self._safe(None, lambda: self.history.release(msg.message_sid))
            return Reply(SORRY, kind="error")
        if owned:
            self._safe(None, lambda: self.history.complete(msg.message_sid, reply.text, deadline))
        return reply

    def notice_due(self, sender: str, kind: str, deadline: Deadline) -> bool:
        """True at most once per 24 h per sender and kind (hints, refusals)."""
        # Without the store we cannot remember: one notice too many beats silence.
        return self._safe(
            True, lambda: self.history.notice_due(sender, kind, NOTICE_EVERY_SECONDS, deadline)
        )

    def _repeat(self, msg: InboundMessage, state: str, reply: str, deadline: Deadline) -> Reply:
        """A redelivery: the reply already given, waiting for it while it is being made."""
        while state == "pending" and deadline.remaining() > FINISH_RESERVE_SECONDS:
            time.sleep(DUPLICATE_POLL_SECONDS)
            delivery = self.history.delivery(msg.message_sid, deadline)
            state, reply = (delivery.state, delivery.reply) if delivery else ("done", "")
        logger.info("duplicate delivery from %s (%s)", mask(msg), state)
        return Reply(reply if state == "done" else "", kind="duplicate")

    def _respond(self, msg: InboundMessage, deadline: Deadline) -> Reply:
        """Everything after de-duplication: media, mention, commands, the answer."""
        trigger = self._trigger
        if not msg.body and msg.num_media:
            return Reply(MEDIA_REPLY.format(trigger=trigger), kind="media")
        if msg.is_group and not self.settings.enable_group_chat:
            return Reply(kind="ignored")
        mentioned, question = find_mention(msg.body, self.settings.trigger_words)
        if self.settings.require_mention and not mentioned:
            if self.notice_due(msg.sender, "mention-hint", deadline):
                return Reply(MENTION_HINT.format(trigger=trigger), kind="hint")
            return Reply(kind="ignored")
        if not question:
            return Reply(HELP_TEXT.format(trigger=trigger), kind="command")
        command = parse_command(question)
        if command == "help":
            return Reply(HELP_TEXT.format(trigger=trigger), kind="command")
        if command == "reset":
            cleared = self._safe(None, lambda: self.history.clear(msg.conversation, deadline))
            return Reply(MEMORY_DOWN if cleared is None else RESET_DONE, kind="command")
        if command == "stats":
            return Reply(self._stats_text(msg.sender, deadline), kind="command")
        if command == "sources":
            sources = self._safe(
                MEMORY_DOWN, lambda: self.history.last_sources(msg.conversation, deadline)
            )
            text = MEMORY_DOWN if sources == MEMORY_DOWN else sources_text(sources)
            return Reply(text, kind="command")
        return self._answer(msg, question, deadline)

    def _stats_text(self, sender: str, deadline: Deadline) -> str:
        """The team's usage for admins, the sender's own counters for everyone else."""
        if self.access.is_admin(sender):
            stats = self._safe(None, lambda: self.history.stats(STATS_DAYS, STATS_TOP, deadline))
            return MEMORY_DOWN if stats is None else team_stats_text(stats)
        usage = self._safe(None, lambda: self.history.usage(sender, deadline))
        return MEMORY_DOWN if usage is None else member_stats_text(usage)

    def _answer(self, msg: InboundMessage, question: str, deadline: Deadline) -> Reply:
        """Retrieve, generate, store: degrade on any failing dependency."""
        started = time.perf_counter()
        note = ""
        limit = self.settings.max_question_chars
        if len(question) > limit:
            question, note = question[:limit], TRUNCATED_NOTE.format(n=limit)
        history_size = self.settings.max_conversation_history
        turns: list[Turn] = self._safe(
            [], lambda: self.history.recent(msg.conversation, history_size, deadline)
        )
        try:
            passages = self.knowledge.search(
                search_query(question, turns),
                self.settings.context_limit,
                deadline.child(seconds=max(1.0, deadline.remaining() / 3)),
            )
        except KnowledgeUnavailable as exc:
            logger.warning("knowledge unavailable: %s", exc)
            self.metrics.incr("errors")
            return Reply(KNOWLEDGE_DOWN, kind="unavailable")
        retrieved = time.perf_counter()
        logger.info("retrieved %d passages in %.0f ms", len(passages), (retrieved - started) * 1e3)
        answer = self._generate(question, passages, turns, deadline)
        text = f"{note}\n\n{answer.text}" if note else answer.text
        self._safe(
            None,
            lambda: self.history.append_exchange(
                msg.conversation,
                msg.sender,
                msg.message_sid,
                question,
                text,
                answer.sources,
                history_size,
                deadline,
            ),
        )
        finished = time.perf_counter()
        self.metrics.incr("answers")
        self.metrics.observe(finished - started)
        logger.info(
            "answered by %s in %.0f ms (%s)",
            answer.backend,
            (finished - retrieved) * 1000,
            _detail(answer),
        )
        return Reply(text, kind="answer", sources=answer.sources)

    def _generate(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """The configured answerer; the extractive one if it breaks unexpectedly."""
        try:
            answer = self.answerer.answer(
                question, passages, turns, deadline.child(reserve=FINISH_RESERVE_SECONDS)
            )
        except Exception:
            logger.exception("answerer %s failed unexpectedly", self.answerer.name)
            answer = self._last_resort.answer(question, passages, turns, deadline, reason="error")
        if answer.fallback_reason:
            self.metrics.incr("fallbacks")
        return answer

    @staticmethod
    def _safe(default: T, operation: Callable[[], T]) -> T:
        """Run a history operation; on HistoryUnavailable log one line and use `default`."""
        try:
            return operation()
        except HistoryUnavailable as exc:
            logger.warning("history unavailable: %s", exc)
            return default


def _detail(answer: Answer) -> str:
    """What the log says about how an answer was made."""
    if answer.fallback_reason:
        return f"fallback: {answer.fallback_reason}"
    return f"{answer.tokens} tokens" if answer.tokens else "no model call"


def mask(msg: InboundMessage) -> str:
    """The sender as logs may show it."""
    return mask_number(msg.sender)
