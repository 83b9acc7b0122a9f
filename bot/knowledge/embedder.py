"""The Embedder protocol: what the graph store needs from an embeddings API, nothing more."""

from __future__ import annotations

from typing import Protocol

from bot.deadline import Deadline

# mistral-embed's vector size; the vector index is created for exactly this many dimensions.
EMBEDDING_DIMENSIONS = 1024


class EmbeddingFailed(Exception):
    """Texts could not be embedded (timeout, HTTP error, bad response)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # short and log-safe: "timeout", "http 429", "connection error"


class Embedder(Protocol):
    """Turns texts into vectors of `dimensions` floats, in the order given."""

    name: str
    dimensions: int

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        """One vector per text within `deadline`; raises EmbeddingFailed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
