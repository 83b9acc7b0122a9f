"""mistral-embed vectors for the knowledge stores (the Embedder protocol), deadline-bound."""

from __future__ import annotations

import logging
from typing import Any

from bot.answer.mistral.client import MistralService
from bot.deadline import Deadline
from bot.embedding import EMBEDDING_DIMENSIONS
from bot.errors import ModelFailed

logger = logging.getLogger(__name__)

EMBED_MODEL = "mistral-embed"
EMBED_BATCH = 32  # texts per request
EMBED_BATCH_CHARS = 32_000  # about 8,000 tokens: well inside one request's limit
MIN_EMBED_SECONDS = 0.2  # one short question embeds in well under this on a warm pool


def _batches(texts: list[str], size: int, max_chars: int) -> list[list[str]]:
    """Consecutive batches of at most `size` texts and (unless one text is longer) chars."""
    batches: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for text in texts:
        if current and (len(current) >= size or chars + len(text) > max_chars):
            batches.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    return [*batches, current] if current else batches


class MistralEmbedder(MistralService):
    """mistral-embed vectors in batches, deadline-bound, one pooled SDK client per process."""

    name = EMBED_MODEL
    dimensions = EMBEDDING_DIMENSIONS

    def __init__(
        self,
        api_key: str,
        server_url: str | None = None,
        model: str = EMBED_MODEL,
        batch_size: int = EMBED_BATCH,
        pool_size: int = 16,
    ) -> None:
        super().__init__(api_key, server_url, pool_size)
        # The name a store records with its vectors: another model's never get compared.
        self.model = self.name = model
        self.batch_size = max(1, batch_size)

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        """One vector per text, in order; raises ModelFailed with a short reason."""
        vectors: list[list[float]] = []
        for batch in _batches(texts, self.batch_size, EMBED_BATCH_CHARS):
            vectors.extend(self._embed_batch(batch, deadline))
        return vectors

    def _embed_batch(self, batch: list[str], deadline: Deadline) -> list[list[float]]:
        """One request, retried on 429/5xx/connection errors while the deadline allows."""
        response, _ = self._client.call(
            lambda sdk, timeout_ms: sdk.embeddings.create(
                model=self.model, inputs=batch, timeout_ms=timeout_ms, retries=None
            ),
            deadline,
            what="embeddings",
            min_seconds=MIN_EMBED_SECONDS,
        )
        return self._vectors(response, len(batch))

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        """The vectors in input order, checked for count and size."""
        try:
            items = sorted(getattr(response, "data", None) or [], key=lambda i: i.index or 0)
            vectors = [list(item.embedding or []) for item in items]
        except (AttributeError, TypeError):  # not the SDK's model: as bad as a wrong count
            vectors = []
        if len(vectors) != expected or any(len(v) != self.dimensions for v in vectors):
            logger.warning("mistral embeddings: unexpected response shape")
            raise ModelFailed("invalid response")
        return vectors
