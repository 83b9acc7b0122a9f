"""The one family of domain errors: a dependency could not do its part, so the answer
degrades (no history, no knowledge, excerpts instead of the model), never the response.

Each adapter raises one of these and nothing of its library's, so the use case handles
every dependency the same way without knowing which library failed.
"""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency could not answer in time or at all; `reason` is short and log-safe."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class HistoryUnavailable(Unavailable):
    """The history backend cannot answer right now; the bot answers without history."""


class KnowledgeUnavailable(Unavailable):
    """The knowledge backend cannot answer right now (down, timed out, misconfigured)."""


class ModelFailed(Unavailable):
    """The model API could not answer or embed ("timeout", "http 429", "connection error")."""


class MediaUnavailable(Unavailable):
    """A message's media cannot be used ("refused host", "too large", "wrong type",
    "timeout", "not found"): the bot says so instead of answering from it."""


# The names the answerer and the embedder used before they shared one error.
AnswerFailed = ModelFailed
EmbeddingFailed = ModelFailed
