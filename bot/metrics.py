"""In-process counters and answer latencies for /health (per worker process)."""

from __future__ import annotations

import hashlib
import threading
from collections import deque

COUNTERS = (
    "messages",
    "answers",
    "fallbacks",
    "cache_hits",
    "errors",
    "rate_limited",
    "duplicates",
)


class Metrics:
    """Thread-safe counters, distinct senders (hashed) and a window of answer latencies."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._users: set[str] = set()
        self._latencies: deque[float] = deque(maxlen=window)

    def incr(self, name: str, by: int = 1) -> None:
        """Add to a counter."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + by

    def seen(self, sender: str) -> None:
        """Count a sender once; only a hash is kept, never the number."""
        digest = hashlib.sha256(sender.encode()).hexdigest()[:16]
        with self._lock:
            self._users.add(digest)

    def observe(self, seconds: float) -> None:
        """Record one answer's latency."""
        with self._lock:
            self._latencies.append(seconds)

    def snapshot(self) -> dict:
        """Counters and p50/p95/p99 of recent answer latencies, in milliseconds."""
        with self._lock:
            counts = dict(self._counts, users=len(self._users))
            latencies = sorted(self._latencies)
        percentiles = {}
        for p in (50, 95, 99):
            if latencies:
                index = min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))
                percentiles[f"p{p}"] = round(latencies[index] * 1000, 1)
            else:
                percentiles[f"p{p}"] = None
        return {"counters": counts, "answer_latency_ms": dict(percentiles, n=len(latencies))}
