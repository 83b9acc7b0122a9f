"""handle(message) -> Reply: the whole use case, deadline-aware, without Flask."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from bot.answer.base import Answerer
from bot.answer.extractive import ExtractiveAnswerer
from bot.chat.access import AccessPolicy
from bot.chat.add_outcomes import AddOutcomes
from bot.chat.cache import AnswerCache
from bot.chat.commands import parse_command, parse_rating
from bot.chat.degrade import without_history
from bot.chat.media import MediaInbox
from bot.chat.mention import find_mention
from bot.chat.runner import CommandHistory, CommandRunner
from bot.chat.settle import Settlement
from bot.deadline import Deadline
from bot.errors import HistoryUnavailable, KnowledgeUnavailable
from bot.followup import search_query
from bot.history.records import ExchangeRecord
from bot.history.store import AnswerCacheStore, Deliveries
from bot.knowledge.store import KnowledgeStore, Readable
from bot.metrics import Metrics
from bot.models import Answer, InboundMessage, Passage, Reply, Turn
from bot.readers import cache_scope, fits
from bot.settings import Settings
from bot.text import mask_number
from bot.texts import (
    HELP_TEXT,
    KNOWLEDGE_DOWN,
    MEMORY_DOWN,
    MENTION_HINT,
    NOTHING_FOUND,
    RESET_DONE,
    SORRY,
    TRUNCATED_NOTE,
)

logger = logging.getLogger(__name__)
__all__ = ["KNOWLEDGE_DOWN", "MEMORY_DOWN", "RESET_DONE", "SORRY", "ConversationHandler"]

NOTICE_EVERY_SECONDS = 24 * 3600
# Time kept back from the model for storing the exchange and writing the TwiML.
FINISH_RESERVE_SECONDS = 0.3
# While another request answers the same MessageSid, wait for its reply this often.
DUPLICATE_POLL_SECONDS = 0.05
# The backend of the reply to a question the knowledge base does not cover: no answerer
# ran, and it is not cached (an ingest may cover the question the next minute).
NOT_FOUND = "none"


class ChatHistory(Deliveries, AnswerCacheStore, CommandHistory, Protocol):
    """What the use case needs from history: deliveries, the answer cache, the commands'."""


@dataclass
class ConversationHandler:
    """Turns one verified InboundMessage into a Reply, using our own store protocols."""

    settings: Settings
    history: ChatHistory
    knowledge: KnowledgeStore
    answerer: Answerer
    metrics: Metrics
    # Measures answer times (stored for `stats`); tests pass a clock they control.
    timer: Callable[[], float] = time.perf_counter
    # Voice notes and documents (bot/chat/media.py); by default every attachment gets
    # the "text and voice only" reply.
    media: MediaInbox | None = None
    # What became of documents added in the background (bot/chat/add_outcomes.py): told
    # at the head of the sender's next reply.
    outcomes: AddOutcomes | None = None

    def __post_init__(self) -> None:
        self.access = AccessPolicy(self.settings)
        self._last_resort = ExtractiveAnswerer()
        self._trigger = self.settings.trigger_words[0]
        self.commands = CommandRunner(self.history, self.access, self._trigger)
        self.cache = AnswerCache(self.settings.answer_cache_ttl_seconds)
        self.readers = self.settings.readers
        self.settlement = Settlement(self.history)  # one write after the claim
        self.media = self.media or MediaInbox(self._trigger)

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
        # Read before this message's own work, which may start an add of its own.
        # Only in a 1:1 chat: a group would read what an admin added, and where.
        outcomes = None if msg.is_group else self.outcomes
        report = outcomes.take(msg.sender) if outcomes is not None else ""
        pending = self.settlement.expect(msg)
        try:
            reply = _after(report, self._respond(msg, deadline))
        except Exception:
            logger.exception("unexpected error handling a message from %s", mask(msg))
            self.metrics.incr("errors")
            if owned:
                without_history(None, lambda: self.history.release(msg.message_sid))
            return _after(report, Reply(SORRY, kind="error"))
        self.settlement.settle(msg, reply, owned, pending, deadline)
        return reply

    def notice_due(self, sender: str, kind: str, deadline: Deadline) -> bool:
        """True at most once per 24 h per sender and kind (hints, refusals)."""
        # Without the store we cannot remember: one notice too many beats silence.
        return without_history(
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
        if msg.num_media and self.media is not None:
            reply = self.media.handle(msg, deadline)
            if reply is not None:
                return reply
        if msg.is_group and not self.settings.enable_group_chat:
            return Reply(kind="ignored")
        mentioned, question = find_mention(msg.body, self.settings.trigger_words)
        if self.settings.require_mention and not mentioned:
            return self._unmentioned(msg, deadline)
        if not question:
            return Reply(HELP_TEXT.format(trigger=trigger), kind="command")
        command = parse_command(question)
        if command is not None:
            return self.commands.run(command, msg, deadline)
        return self._answer(msg, question, deadline)

    def _unmentioned(self, msg: InboundMessage, deadline: Deadline) -> Reply:
        """A thumbs-up right after an answer is feedback; otherwise one hint a day."""
        # Twilio's chats are 1:1, so a bare 👍 is meant for the bot. In a group it may be
        # meant for anyone: there only a mention counts.
        rating = None if msg.is_group else parse_rating(msg.body)
        if rating:
            reply = self.commands.rate_unmentioned(msg, rating, deadline)
            if reply is not None:
                return reply
        if self.notice_due(msg.sender, "mention-hint", deadline):
            return Reply(MENTION_HINT.format(trigger=self._trigger), kind="hint")
        return Reply(kind="ignored")

    def ask(self, msg: InboundMessage, question: str, deadline: Deadline) -> Reply:
        """`question` answered as if `msg` had typed it (a voice note's transcript): no
        mention or command parsing, the same history, cache, retrieval and answerer."""
        return self._answer(msg, question, deadline)

    def _answer(self, msg: InboundMessage, question: str, deadline: Deadline) -> Reply:
        """Cache, or retrieve and generate; then store. Degrade on any failing dependency."""
        started = self.timer()
        note = ""
        limit = self.settings.max_question_chars
        if len(question) > limit:
            question, note = question[:limit], TRUNCATED_NOTE.format(n=limit)
        history_size = self.settings.max_conversation_history
        readable = self.readers.readable(msg.sender, msg.is_group)
        turns: list[Turn] | None = without_history(
            None, lambda: self.history.recent(msg.conversation, history_size, deadline)
        )
        if turns and readable is not None:
            # Earlier answers may quote collections this sender may not read (another
            # member's in a group; their own, made before their access changed).
            turns = [turn for turn in turns if fits(turn.readers, readable)]
        # Only a first turn may use the cache: a follow-up depends on its conversation (and
        # without the store we cannot tell which this is).
        key = self.cache.key(self.knowledge, question, readable) if turns == [] else None
        answer = self.cache.lookup(self.history, key, deadline) if key else None
        cache_entry = None
        if answer is not None:
            self.metrics.incr("cache_hits")
        else:
            answer = self._retrieve_and_generate(question, turns or [], readable, deadline)
            if answer is None:
                return Reply(KNOWLEDGE_DOWN, kind="unavailable")
            if key and answer.backend != NOT_FOUND:
                cache_entry = self.cache.entry(key, answer)
        text = f"{note}\n\n{answer.text}" if note else answer.text
        elapsed = self.timer() - started
        exchange = ExchangeRecord(
            conversation=msg.conversation,
            sender=msg.sender,
            message_sid=msg.message_sid,
            question=question,
            answer=text,
            sources=answer.sources,
            keep=history_size,
            backend=answer.backend,
            fallback_reason=answer.fallback_reason,
            latency_ms=round(elapsed * 1000, 1),
            cache=cache_entry,
            readers=cache_scope(readable),
        )
        self.settlement.store(exchange, deadline)
        self.metrics.incr("answers")
        self.metrics.observe(elapsed)
        logger.info(
            "answered by %s in %.0f ms (%s)", answer.backend, elapsed * 1000, _detail(answer)
        )
        return Reply(text, kind="answer", sources=answer.sources)

    def _retrieve_and_generate(
        self, question: str, turns: list[Turn], readable: Readable, deadline: Deadline
    ) -> Answer | None:
        """Passages for the question (and the turns it follows up on) from the collections
        the sender reads, then the answer; "not found" without asking any answerer when no
        passage is relevant enough (the store's floor: no guessing) or none is readable;
        None when the knowledge base cannot be searched."""
        started = self.timer()
        try:
            passages = self.knowledge.search(
                search_query(question, turns),
                self.settings.context_limit,
                deadline.child(seconds=max(1.0, deadline.remaining() / 3)),
                readable,
            )
        except KnowledgeUnavailable as exc:
            logger.warning("knowledge unavailable: %s", exc)
            self.metrics.incr("errors")
            return None
        elapsed_ms = (self.timer() - started) * 1000
        logger.info("retrieved %d passages in %.0f ms", len(passages), elapsed_ms)
        if not passages:
            return Answer(NOTHING_FOUND, backend=NOT_FOUND)
        return self._generate(question, passages, turns, deadline)

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


def _after(report: str, reply: Reply) -> Reply:
    """The reply, headed by a report on earlier work ("" for none)."""
    if not report:
        return reply
    return replace(reply, text=f"{report}\n\n{reply.text}" if reply.text else report)


def _detail(answer: Answer) -> str:
    """What the log says about how an answer was made."""
    if answer.fallback_reason:
        return f"fallback: {answer.fallback_reason}"
    if answer.backend == "cache":
        return "no retrieval, no model call"
    if answer.backend == NOT_FOUND:
        return "nothing relevant found, no model call"
    return f"{answer.tokens} tokens" if answer.tokens else "no model call"


def mask(msg: InboundMessage) -> str:
    """The sender as logs may show it."""
    return mask_number(msg.sender)
