"""The graph store on a black-holed network: real FalkorDB, real driver, a relay in between."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.client import GraphClient
from bot.knowledge.graph.store import GraphKnowledgeStore
from bot.knowledge.store import Chunk, Document
from tests.services.falkordb import FalkorDBServer
from tests.services.relay import BlackHoleRelay

WORKERS = 4  # a small client: more searches than threads costs little
DEADLINE = 1.0
MARGIN = 0.3  # thread start-up and scheduling on a loaded 2-core machine


@pytest.fixture
def relay(falkordb: FalkorDBServer) -> Iterator[BlackHoleRelay]:
    """A relay in front of FalkorDB's Bolt port that can black-hole the network."""
    relay = BlackHoleRelay("127.0.0.1", falkordb.bolt_port)
    yield relay
    relay.close()


@pytest.fixture
def store(relay: BlackHoleRelay) -> Iterator[GraphKnowledgeStore]:
    """A store whose every Bolt connection goes through the relay, with one document."""
    client = GraphClient(f"bolt://{relay.address}", "falkordb", "", workers=WORKERS)
    store = GraphKnowledgeStore(client)
    chunk = Chunk(seq=0, text="The audit budget is 12,000 euros.")
    store.upsert(Document("d1", "Budget", "text", "d1.txt", "", "s1", (chunk,), ()))
    yield store
    store.close()


def search(store: GraphKnowledgeStore) -> tuple[list | None, float]:
    """(passages, or None when the store is unavailable; seconds taken)."""
    started = time.monotonic()
    try:
        passages = store.search("audit budget", 3, Deadline(DEADLINE))
    except KnowledgeUnavailable:
        passages = None
    return passages, time.monotonic() - started


def busy_graph_threads() -> int:
    """Executor threads running a transaction (inside GraphClient._transact) right now."""
    frames = sys._current_frames()
    busy = 0
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or 0) if thread.name.startswith("graph_") else None
        while frame is not None and frame.f_code.co_name != "_transact":
            frame = frame.f_back
        busy += frame is not None
    return busy


def test_search_during_an_outage_fails_within_its_deadline(store, relay) -> None:
    assert search(store)[0]
    relay.blackhole()
    started = time.monotonic()
    with pytest.raises(KnowledgeUnavailable):
        store.search("audit budget", 3, Deadline(DEADLINE))
    assert time.monotonic() - started < DEADLINE + MARGIN


def test_stuck_searches_free_their_threads_and_recover(store, relay) -> None:
    with ThreadPoolExecutor(WORKERS * 3) as callers:
        # Warm: pooled connections that will carry queries into the outage.
        assert all(p for p, _ in callers.map(lambda _: search(store), range(WORKERS)))

        relay.blackhole()
        results = list(callers.map(lambda _: search(store), range(WORKERS * 3)))
    times = [elapsed for _, elapsed in results]
    print(
        f"\n{len(results)} searches during the outage ({WORKERS} threads): "
        f"max {max(times):.2f} s, median {statistics.median(times):.2f} s"
    )
    assert all(passages is None for passages, _ in results)
    assert max(times) < DEADLINE + MARGIN

    # Still black-holed: no thread may stay on a dead socket until the network is back.
    freed_by = time.monotonic() + 2 * DEADLINE
    while busy_graph_threads() and time.monotonic() < freed_by:
        time.sleep(0.05)
    assert busy_graph_threads() == 0

    relay.resume()
    resumed = time.monotonic()
    while not (passages := search(store)[0]):
        assert time.monotonic() - resumed < 10, "no search result 10 s after the outage"
        time.sleep(0.1)
    print(f"first search result {time.monotonic() - resumed:.2f} s after the network came back")
    assert "12,000 euros" in passages[0].text
