"""MistralEmbedder: mistral-embed through the real SDK against the local stand-in."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from bot.answer.mistral import MistralEmbedder
from bot.deadline import Deadline
from bot.embedding import EMBEDDING_DIMENSIONS
from bot.errors import EmbeddingFailed
from tests.fakes.mistral_server import TRICKLE_MODES, MistralStub, embed
from tests.support import API_KEY


@pytest.fixture
def embedder(stub: MistralStub) -> Iterator[MistralEmbedder]:
    client = MistralEmbedder(API_KEY, server_url=stub.url, batch_size=4)
    yield client
    client.close()


def embedding_requests(stub: MistralStub) -> list[dict]:
    return [r.json for r in stub.requests if r.path.startswith("/v1/embeddings")]


def test_texts_are_embedded_in_order_in_batches(stub, embedder) -> None:
    texts = [f"note number {i} about the budget" for i in range(10)]
    vectors = embedder.embed(texts, Deadline(5))
    assert vectors == [pytest.approx(embed(t)) for t in texts]
    assert all(len(v) == EMBEDDING_DIMENSIONS for v in vectors)
    batches = embedding_requests(stub)
    assert [len(b.get("input") or b.get("inputs")) for b in batches] == [4, 4, 2]
    assert {b["model"] for b in batches} == {"mistral-embed"}
    assert embedder.embed([], Deadline(5)) == []


def test_a_429_is_retried_within_the_deadline(stub, embedder) -> None:
    stub.statuses = [429]
    stub.retry_after = 0.1
    assert embedder.embed(["budget"], Deadline(5)) == [pytest.approx(embed("budget"))]
    assert len(embedding_requests(stub)) == 2


def test_a_slow_api_fails_before_the_deadline(stub, embedder) -> None:
    stub.delay = 3.0
    started = time.monotonic()
    with pytest.raises(EmbeddingFailed) as caught:
        embedder.embed(["budget"], Deadline(0.8))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize("mode", TRICKLE_MODES)
def test_a_trickled_or_endless_response_fails_within_the_budget(stub, embedder, mode) -> None:
    stub.trickle = mode
    started = time.monotonic()
    with pytest.raises(EmbeddingFailed) as caught:
        embedder.embed(["budget"], Deadline(2))
    elapsed = time.monotonic() - started
    print(f"\nembeddings, {mode} trickled: failed after {elapsed:.2f}s of a 2 s budget")
    assert caught.value.reason == "timeout"  # the graph store then searches full-text only
    assert elapsed < 2.5
    stub.trickle = None
    # The same client still works: the cut connection was closed, not pooled.
    assert embedder.embed(["budget"], Deadline(5)) == [pytest.approx(embed("budget"))]
    requests = [r for r in stub.requests if r.path.startswith("/v1/embeddings")]
    assert requests[1].port != requests[0].port


def test_errors_become_short_reasons_without_the_key(stub, caplog) -> None:
    with pytest.raises(ValueError):
        MistralEmbedder("", server_url=stub.url)
    embedder = MistralEmbedder(API_KEY, server_url=stub.url)
    try:
        stub.statuses = [400]
        with caplog.at_level(logging.WARNING), pytest.raises(EmbeddingFailed) as caught:
            embedder.embed(["budget"], Deadline(5))
    finally:
        embedder.close()
    assert caught.value.reason == "http 400"
    assert API_KEY not in caplog.text and "budget" not in caplog.text
    assert API_KEY not in repr(embedder)


def test_a_response_of_the_wrong_shape_is_refused(embedder, monkeypatch) -> None:
    monkeypatch.setattr(embedder, "dimensions", 8)  # the stand-in answers with 1,024
    with pytest.raises(EmbeddingFailed) as caught:
        embedder.embed(["budget"], Deadline(5))
    assert caught.value.reason == "invalid response"
