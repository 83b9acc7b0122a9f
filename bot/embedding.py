"""The Embedder protocol: what a knowledge store needs from an embeddings API, nothing more
(a leaf: the Mistral adapter implements it, the knowledge stores use it, neither imports
the other)."""

from __future__ import annotations

from typing import Protocol

from bot.deadline import Deadline

# mistral-embed's vector size; the vector index is created for exactly this many dimensions.
EMBEDDING_DIMENSIONS = 1024


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
