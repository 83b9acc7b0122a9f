"""Answer generation: Mistral when a key is configured, extractive excerpts otherwise."""

from __future__ import annotations

import logging

from bot.answer.base import Answerer
from bot.answer.extractive import ExtractiveAnswerer
from bot.deadline import Deadline
from bot.embedding import Embedder
from bot.errors import ModelFailed
from bot.models import Answer, Passage, Turn

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 64

__all__ = ["Answerer", "ExtractiveAnswerer", "FallbackAnswerer", "build_answerer", "build_embedder"]


class FallbackAnswerer:
    """Tries the primary answerer; on failure answers with extractive excerpts instead."""

    def __init__(self, primary: Answerer, fallback: ExtractiveAnswerer | None = None) -> None:
        self.primary = primary
        self.fallback = fallback or ExtractiveAnswerer()
        self.name = primary.name

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """The primary's answer, or excerpts with `fallback_reason` set; never raises."""
        try:
            return self.primary.answer(question, passages, turns, deadline)
        except ModelFailed as exc:
            reason = exc.reason or "error"
        except Exception:  # a bug in the primary must still leave the user an answer
            logger.exception("%s answerer crashed", self.primary.name)
            reason = "error"
        return self.fallback.answer(question, passages, turns, deadline, reason=reason)

    def ping(self, deadline: Deadline) -> None:
        """Check the primary (the model API) answers; raises ModelFailed."""
        self.primary.ping(deadline)

    def after_fork(self) -> None:
        """Drop the primary's connections inherited from a parent process."""
        self.primary.after_fork()

    def close(self) -> None:
        """Release the primary's connections, if it holds any."""
        close = getattr(self.primary, "close", None)
        if callable(close):
            close()


# Each thread makes at most one model call at a time; with fewer connections than threads,
# the extra calls would queue for a connection inside their own budget.
def pool_size(threads: int) -> int:
    """HTTP connections to keep for the model: one per gunicorn thread, at least 64."""
    return max(DEFAULT_POOL_SIZE, threads)


def build_embedder(api_key: str | None, server_url: str | None = None) -> Embedder | None:
    """mistral-embed vectors with a key (the knowledge store decides on using them), else None."""
    if not api_key:
        return None
    from bot.answer.mistral.embedder import MistralEmbedder

    return MistralEmbedder(api_key, server_url)


def build_answerer(
    api_key: str | None, model: str, server_url: str | None = None, threads: int = 0
) -> Answerer:
    """Extractive without a key (no HTTP ever); else Mistral, pooled for `threads`, falling back."""
    if not api_key:
        return ExtractiveAnswerer()
    # Imported here so the SDK is only loaded when a key makes it useful.
    from bot.answer.mistral.answerer import MistralAnswerer

    return FallbackAnswerer(
        MistralAnswerer(api_key, model, server_url=server_url, pool_size=pool_size(threads))
    )
