"""The answer cache: a first-turn question asked again against unchanged knowledge is
answered without retrieval or a model call.

Entries live in the history store (so every worker and instance shares them), keyed by a
hash of the exact question text the model is given and the knowledge base's version, which
every ingest changes. Any looser key (case folded, punctuation dropped) lets two questions
that read differently to the model share one answer: "budget in €?" and "budget in $?", or
an innocent question and the same words with instructions written in characters the
looser key drops, whose answer would then be served to everyone. Only
answers made without a fallback are cached, and only for questions with no earlier turns:
a follow-up depends on its conversation, so it is never served from, nor stored in, the
cache.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable, KnowledgeUnavailable
from bot.history.records import CachedAnswer, CacheEntry
from bot.history.store import AnswerCacheStore
from bot.knowledge.store import KnowledgeStore, Readable
from bot.models import Answer
from bot.readers import cache_scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    """Where a question's answer is cached."""

    question: str  # sha256 of the exact question text the model is given
    knowledge_version: str


class AnswerCache:
    """Looks answers up through the history store and says what to file; never raises."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl_seconds = ttl_seconds

    def key(
        self, knowledge: KnowledgeStore, question: str, readable: Readable = None
    ) -> CacheKey | None:
        """The key for a first-turn question asked by someone who reads `readable` (None:
        everything); None when caching is off or impossible.

        Read before retrieval, so an answer is never filed under a newer version than the
        passages it was made from. The readers' collections are part of the key: an answer
        made from the board's documents is never served to someone who may not read them.
        """
        if not self.ttl_seconds or not question:
            return None
        scope = cache_scope(readable)
        keyed = f"{scope}\x00{question}" if scope else question
        digest = hashlib.sha256(keyed.encode("utf-8", "surrogatepass")).hexdigest()
        try:
            return CacheKey(digest, knowledge.version())
        except KnowledgeUnavailable as exc:
            logger.warning("answer cache skipped: knowledge version unavailable (%s)", exc)
            return None

    def lookup(self, history: AnswerCacheStore, key: CacheKey, deadline: Deadline) -> Answer | None:
        """The cached answer, as an Answer whose backend is "cache"; None on a miss."""
        try:
            hit = history.cached_answer(
                key.question, key.knowledge_version, self.ttl_seconds, deadline
            )
        except HistoryUnavailable as exc:
            logger.warning("answer cache unavailable: %s", exc)
            return None
        return Answer(hit.text, hit.sources, backend="cache") if hit else None

    def entry(self, key: CacheKey, answer: Answer) -> CacheEntry | None:
        """What to file for an answer made without a fallback (a fallback is worth
        retrying later); the history store files it with the exchange, in one write."""
        if answer.fallback_reason or not answer.text:
            return None
        cached = CachedAnswer(answer.text, answer.sources)
        return CacheEntry(key.question, key.knowledge_version, cached, self.ttl_seconds)
