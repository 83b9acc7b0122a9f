"""One driver and the threads that use it: a generation, retired and closed as a whole.

See client.py for why: nothing bounds a Bolt read once a query is sent, so a generation
whose transaction outlives its deadline is retired, and closing its driver (every socket
of its pool) ends the reads that would never return.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import neo4j

from bot.deadline import Deadline

logger = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_SECONDS = 1.0  # TCP connect; a refused connection fails at once anyway
# The driver's own acquisition bound (connect + TLS + Bolt handshake, or a wait for a pooled
# connection): the longest any call may ask for; each session asks for its own share.
MAX_ACQUIRE_SECONDS = 10.0
# A pooled connection idle this long gets a RESET (within the acquisition timeout) before
# use: NAT gateways and firewalls forget idle connections without telling either end.
LIVENESS_SECONDS = 30.0
SEND_SECONDS = 5.0  # one send (also the GOODBYE of a driver being closed) on a full buffer
OVERDUE_SECONDS = 0.25  # a transaction this far past its deadline has its connection closed
# Every thread busy and none finished for this long: they wait on a dead network, and new
# work would only queue behind them. (A busy but healthy server finishes within ms.)
STALL_SECONDS = 0.5


class Generation:
    """One driver and the threads that use it; retired and closed as a whole."""

    def __init__(self, uri: str, auth: tuple[str, str], workers: int) -> None:
        self.driver = neo4j.GraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=CONNECT_SECONDS,
            connection_acquisition_timeout=MAX_ACQUIRE_SECONDS,
            liveness_check_timeout=LIVENESS_SECONDS,
            connection_write_timeout=SEND_SECONDS,
            max_connection_pool_size=workers,
            # No server-side notification filter: it needs Bolt 5.2 (Neo4j 5.7+), and below
            # that the driver refuses every call, so `check` could not even say which version
            # it found. Notifications are logged (each once, see client.py), never raised as
            # Python warnings.
            warn_notification_severity="OFF",
        )
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="graph")
        self.workers = workers
        self._overdue_at: dict[int, float] = {}  # transactions in flight (or queued)
        self._keys = itertools.count()
        self._changed = threading.Condition()
        self._progress = time.monotonic()  # when a transaction last finished

    def stuck(self) -> bool:
        """True when every thread is busy and none has finished for STALL_SECONDS."""
        with self._changed:
            busy = len(self._overdue_at) >= self.workers
            return busy and time.monotonic() - self._progress > STALL_SECONDS

    def overdue(self) -> bool:
        """True when a transaction runs past its deadline (and the grace after it)."""
        now = time.monotonic()
        with self._changed:
            return any(at <= now for at in self._overdue_at.values())

    def submit(self, call: Callable[[], T], deadline: Deadline) -> Future[T]:
        """Run `call` on one of this generation's threads, in flight until it returns."""
        key = next(self._keys)
        with self._changed:
            self._overdue_at[key] = time.monotonic() + deadline.remaining() + OVERDUE_SECONDS

        def run() -> T:
            try:
                return call()
            finally:
                with self._changed:
                    del self._overdue_at[key]
                    self._progress = time.monotonic()
                    self._changed.notify_all()

        return self.pool.submit(run)

    def close_when_overdue(self) -> None:
        """Close the driver once no transaction has time left; then wait for the threads."""
        with self._changed:
            while self._overdue_at:
                wait = max(self._overdue_at.values()) - time.monotonic()
                if wait <= 0:
                    break
                self._changed.wait(wait)
        # Whatever still runs is past its deadline: nobody waits for its result, and closing
        # its socket ends a read that would never return.
        _tear_down(self.driver)
        self.close()
        with self._changed:
            if not self._changed.wait_for(lambda: not self._overdue_at, timeout=10.0):
                logger.warning("%d graph threads still busy after close", len(self._overdue_at))
                self._changed.wait_for(lambda: not self._overdue_at)

    def close(self) -> None:
        """Close the driver (every connection, in use or not) and release the threads."""
        self.driver.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _tear_down(driver: neo4j.Driver) -> None:
    """Close every socket of `driver`, in use or idle, without Bolt's polite GOODBYE."""
    # `driver.close()` alone would end the stuck reads too, but it sends GOODBYE on every
    # connection first, and FalkorDB leaves one later connection unanswered per GOODBYE
    # after a query (a retired pool of 32 meant 32 handshakes timing out one after another
    # once the network was back). Killing only closes sockets. The pool is the driver's
    # private API (neo4j 6.x), so anything unexpected falls back to the polite close.
    try:
        pool = driver._pool  # type: ignore[attr-defined]
        with pool.lock:
            connections = [c for queue in pool.connections.values() for c in queue]
        for connection in connections:
            connection.kill()
    except Exception:  # a changed driver: the polite close that follows still frees threads
        logger.warning("graph driver internals changed: closing with GOODBYE", exc_info=True)
