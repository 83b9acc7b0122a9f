"""The neo4j driver behind a deadline: one driver per process, every call bounded in time.

The driver's own timeouts cover connecting, acquiring a pooled connection and retrying
managed transactions, and a server-side transaction timeout covers slow queries. None of
them covers a server that accepted a query and went silent (a paused process, a network
partition): the driver would wait on the socket for ever. So each transaction runs on a
small per-process thread pool and the caller waits at most until its deadline.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from bot.deadline import Deadline
from bot.knowledge.store import KnowledgeUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[neo4j.ManagedTransaction], T]

CONNECT_SECONDS = 1.0  # TCP connect; a refused connection fails at once anyway
MAX_ACQUIRE_SECONDS = 1.5  # connect + TLS + Bolt handshake, or a wait for a pooled connection
RETRY_DELAY_SECONDS = 0.1  # first managed-retry delay (the driver's default is a whole second)
WORKERS = 32  # transactions in flight per process: gunicorn's threads per worker
# Drivers a forked child inherited: never closed there (that would end the parent's
# sessions on the shared sockets), kept referenced so garbage collection cannot warn.
_INHERITED: list[Any] = []


class GraphQueryError(KnowledgeUnavailable):
    """The server answered with an error for this query (syntax, missing index, ...)."""


class _OutOfTime(Exception):
    """Raised inside a transaction function: no retry once the deadline has passed."""


def _acquire_seconds(budget: float) -> float:
    # Half the budget at most, so one stalled handshake still leaves time for a retry.
    return min(MAX_ACQUIRE_SECONDS, max(0.2, budget / 2))


class GraphClient:
    """Runs managed read/write transactions against one Bolt server within deadlines."""

    def __init__(
        self, uri: str, user: str, password: str, database: str = "", workers: int = WORKERS
    ) -> None:
        self.uri = uri
        self.database = database or None
        self.workers = workers
        self._auth = (user, password)
        self._lock = threading.Lock()
        self._pid = 0
        self._driver: neo4j.Driver | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:  # never show the password
        return f"GraphClient(uri={self.uri!r}, database={self.database!r})"

    def _state(self) -> tuple[neo4j.Driver, ThreadPoolExecutor]:
        """This process's driver and thread pool, created on first use and after a fork."""
        pid = os.getpid()
        with self._lock:
            if self._driver is None or self._pid != pid:
                if self._driver is not None:
                    _INHERITED.append(self._driver)
                self._driver = neo4j.GraphDatabase.driver(
                    self.uri,
                    auth=self._auth,
                    connection_timeout=CONNECT_SECONDS,
                    connection_acquisition_timeout=MAX_ACQUIRE_SECONDS,
                    max_connection_pool_size=self.workers,
                    # Notifications (e.g. "index already exists") are not ours to warn about.
                    notifications_min_severity="OFF",
                    warn_notification_severity="OFF",
                    # Not in the documented set, but without it the first retry waits 1 s.
                    initial_retry_delay=RETRY_DELAY_SECONDS,
                )
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="graph")
                self._pid = pid
            assert self._pool is not None
            return self._driver, self._pool

    def read(self, work: Work[T], deadline: Deadline) -> T:
        """Run `work` in a read transaction; raises KnowledgeUnavailable."""
        return self._run(neo4j.READ_ACCESS, work, deadline)

    def write(self, work: Work[T], deadline: Deadline) -> T:
        """Run `work` in a write transaction; raises KnowledgeUnavailable."""
        return self._run(neo4j.WRITE_ACCESS, work, deadline)

    def _run(self, mode: str, work: Work[T], deadline: Deadline) -> T:
        if deadline.expired():
            raise KnowledgeUnavailable("timeout")
        driver, pool = self._state()
        future = pool.submit(self._transact, driver, mode, work, deadline)
        try:
            return future.result(timeout=deadline.remaining())
        except FutureTimeout:
            future.cancel()
            raise KnowledgeUnavailable("timeout") from None

    def _transact(self, driver: neo4j.Driver, mode: str, work: Work[T], deadline: Deadline) -> T:
        budget = deadline.remaining()

        def attempt(tx: neo4j.ManagedTransaction) -> T:
            if deadline.expired():
                raise _OutOfTime
            return work(tx)

        # Server-side transaction timeout (Neo4j enforces it; 0 would mean "none").
        attempt.timeout = max(0.05, budget)  # type: ignore[attr-defined]
        try:
            with driver.session(
                database=self.database,
                default_access_mode=mode,
                connection_acquisition_timeout=_acquire_seconds(budget),
                max_transaction_retry_time=max(0.0, budget - 0.3),
            ) as session:
                if mode == neo4j.READ_ACCESS:
                    return session.execute_read(attempt)
                return session.execute_write(attempt)
        except _OutOfTime:
            raise KnowledgeUnavailable("timeout") from None
        except Neo4jError as exc:
            if exc.is_retryable():  # retried until the budget ran out: the server is unwell
                raise KnowledgeUnavailable(f"graph: {_describe(exc)}") from None
            raise GraphQueryError(f"graph query failed: {_describe(exc)}") from None
        except (DriverError, OSError) as exc:
            raise KnowledgeUnavailable(f"graph unreachable: {type(exc).__name__}") from None

    def after_fork(self) -> None:
        """Forget the parent's driver; the next call creates this process's own."""
        with self._lock:
            if self._driver is not None and self._pid != os.getpid():
                _INHERITED.append(self._driver)
                self._driver, self._pool, self._pid = None, None, 0

    def close(self) -> None:
        """Close this process's driver; the next call opens a new one."""
        with self._lock:
            driver, pool, owned = self._driver, self._pool, self._pid == os.getpid()
            self._driver, self._pool, self._pid = None, None, 0
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if driver is not None:
            if owned:
                driver.close()
            else:
                _INHERITED.append(driver)


def _describe(exc: Neo4jError) -> str:
    """A short, log-safe description: the status code, never the query or its values."""
    return exc.code or type(exc).__name__
