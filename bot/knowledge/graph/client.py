"""The neo4j driver behind a deadline: every Bolt call bounded, a stuck one torn down.

What bounds what in the neo4j 6.x driver: `connection_timeout` bounds the TCP connect, and
`connection_acquisition_timeout` the whole acquisition (connect, TLS, Bolt handshake,
HELLO, and the RESET that checks a pooled connection idle for `liveness_check_timeout`).
Nothing bounds a read once a query is sent: the socket waits without a timeout unless the
server sends the `connection.recv_timeout_seconds` hint (FalkorDB does not), and TCP keeps
a silent connection for hours. On a network that drops packets the reading thread waits
for ever, and `Future.cancel()` cannot stop a call already running.

So each transaction runs on a thread of a *generation* (one driver and its thread pool) and
its caller waits at most until its deadline. A generation whose transaction outlives its
deadline, or whose threads are all busy while none has finished for STALL_SECONDS, is
retired: new work goes to a fresh generation at once, and the retired driver is closed as
soon as none of its transactions has time left. Closing shuts down every socket of its
pool, in use or not, so a read on a dead socket returns with an error and frees its thread.
(No public API closes one connection, and the driver calls `close` unsafe while sessions
are in use; it happens only when all of them are past their deadlines and nobody waits for
their results. tests/test_graph_app.py and tests/knowledge/test_graph_blackhole.py pin the
behaviour on a black-holed network.) At most MAX_RETIRED generations wait for their
threads; beyond that, a stuck one fails fast.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[neo4j.Transaction], T]

CONNECT_SECONDS = 1.0  # TCP connect; a refused connection fails at once anyway
MAX_ACQUIRE_SECONDS = 1.5  # connect + TLS + Bolt handshake, or a wait for a pooled connection
# A pooled connection idle this long gets a RESET (within the acquisition timeout) before
# use: NAT gateways and firewalls forget idle connections without telling either end.
LIVENESS_SECONDS = 30.0
SEND_SECONDS = 5.0  # one send (also the GOODBYE of a driver being closed) on a full buffer
RETRY_DELAY_SECONDS = 0.1  # first retry delay, doubled after each failed attempt
MIN_ATTEMPT_SECONDS = 0.05  # no attempt starts with less time left than this
WORKERS = 32  # transactions in flight per generation: gunicorn's threads per worker
OVERDUE_SECONDS = 0.25  # a transaction this far past its deadline has its connection closed
# Every thread busy and none finished for this long: they wait on a dead network, and new
# work would only queue behind them. (A busy but healthy server finishes within ms.)
STALL_SECONDS = 0.5
# Retired generations still waiting for their threads: with the current one, a process
# holds at most (1 + MAX_RETIRED) drivers and (1 + MAX_RETIRED) * WORKERS graph threads.
MAX_RETIRED = 3
# Drivers a forked child inherited: never closed there (that would end the parent's
# sessions on the shared sockets), kept referenced so garbage collection cannot warn.
_INHERITED: list[Any] = []


class GraphQueryError(KnowledgeUnavailable):
    """The server answered with an error for this query (syntax, missing index, ...)."""


def _acquire_seconds(budget: float) -> float:
    # Half the budget at most, so one stalled handshake still leaves time for a retry.
    return min(MAX_ACQUIRE_SECONDS, budget, max(0.2, budget / 2))


class _Generation:
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
            # Notifications (e.g. "index already exists") are not ours to warn about.
            notifications_min_severity="OFF",
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


class GraphClient:
    """Runs read/write transactions against one Bolt server within deadlines."""

    def __init__(
        self, uri: str, user: str, password: str, database: str = "", workers: int = WORKERS
    ) -> None:
        self.uri = uri
        self.database = database or None
        self.workers = workers
        self._auth = (user, password)
        self._lock = threading.Lock()
        self._pid = 0
        self._current: _Generation | None = None
        self._retired: list[_Generation] = []

    def __repr__(self) -> str:  # never show the password
        return f"GraphClient(uri={self.uri!r}, database={self.database!r})"

    def _state(self) -> _Generation:
        """This process's current generation, created on first use and after a fork."""
        with self._lock:
            return self._generation()

    def _generation(self) -> _Generation:
        """The generation for new work (the lock is held): fresh when the current is stuck."""
        pid = os.getpid()
        if self._current is None or self._pid != pid:
            self._forget_inherited()
            self._current = _Generation(self.uri, self._auth, self.workers)
            self._pid = pid
        elif self._current.stuck() and not self._retire(self._current, "every thread is stuck"):
            raise KnowledgeUnavailable("graph busy")
        return self._current

    def _retire(self, generation: _Generation, reason: str) -> bool:
        """Send new work to a fresh generation and close this one when it is overdue."""
        if generation is not self._current:
            return True  # already retired
        if len(self._retired) >= MAX_RETIRED:
            logger.warning("graph client: %s, but %d drivers still wait", reason, MAX_RETIRED)
            return False
        logger.warning("graph client: %s; a fresh driver takes new work", reason)
        self._retired.append(generation)
        self._current = _Generation(self.uri, self._auth, self.workers)
        threading.Thread(
            target=self._reap, args=(generation,), name="graph-reaper", daemon=True
        ).start()
        return True

    def _reap(self, generation: _Generation) -> None:
        """A retired generation's own thread: close it when overdue, then forget it."""
        generation.close_when_overdue()
        with self._lock:
            if generation in self._retired:
                self._retired.remove(generation)
            # A slot is free: a current generation that got stuck meanwhile goes too.
            current = self._current
            if current is not None and self._pid == os.getpid() and current.overdue():
                self._retire(current, "a transaction outlived its deadline")

    def read(self, work: Work[T], deadline: Deadline) -> T:
        """Run `work` in a read transaction; raises KnowledgeUnavailable."""
        return self._run(neo4j.READ_ACCESS, work, deadline)

    def write(self, work: Work[T], deadline: Deadline) -> T:
        """Run `work` in a write transaction; raises KnowledgeUnavailable."""
        return self._run(neo4j.WRITE_ACCESS, work, deadline)

    def _run(self, mode: str, work: Work[T], deadline: Deadline) -> T:
        """Run `work` on a graph thread and wait for it until the deadline, not longer."""
        if deadline.expired():
            raise KnowledgeUnavailable("timeout")
        with self._lock:
            generation = self._generation()
            driver = generation.driver
            future = generation.submit(
                lambda: self._transact(driver, mode, work, deadline), deadline
            )
        try:
            return future.result(timeout=deadline.remaining())
        except FutureTimeout:
            # Still running at its deadline, most likely reading from a dead connection that
            # only closing its driver ends: new work must not wait behind it.
            with self._lock:
                self._retire(generation, "a transaction outlived its deadline")
            raise KnowledgeUnavailable("timeout") from None

    def _transact(self, driver: neo4j.Driver, mode: str, work: Work[T], deadline: Deadline) -> T:
        """Attempts until one succeeds, one fails for good, or no time is left to retry."""
        delay = RETRY_DELAY_SECONDS
        while True:
            try:
                return self._attempt(driver, mode, work, deadline)
            except Neo4jError as exc:
                if not exc.is_retryable():
                    raise GraphQueryError(f"graph query failed: {_describe(exc)}") from None
                reason = f"graph: {_describe(exc)}"  # the server is unwell
            except (DriverError, OSError) as exc:
                reason = f"graph unreachable: {type(exc).__name__}"
                if isinstance(exc, DriverError) and not exc.is_retryable():
                    raise KnowledgeUnavailable(reason) from None
            # Our own loop, not the driver's managed retries: those start their clock after
            # the first failure, so an attempt ended by closing its overdue driver would
            # retry past the deadline (and open a connection on a closed driver).
            if deadline.remaining() < delay + MIN_ATTEMPT_SECONDS:
                raise KnowledgeUnavailable(reason)
            time.sleep(delay)
            delay *= 2

    def _attempt(self, driver: neo4j.Driver, mode: str, work: Work[T], deadline: Deadline) -> T:
        """One transaction: acquire a connection, run `work`, commit."""
        budget = deadline.remaining()
        if budget <= 0:
            raise KnowledgeUnavailable("timeout")
        with driver.session(
            database=self.database,
            default_access_mode=mode,
            connection_acquisition_timeout=_acquire_seconds(budget),
        ) as session:
            # Server-side transaction timeout too (Neo4j enforces it; FalkorDB ignores it).
            with session.begin_transaction(timeout=max(0.05, budget)) as tx:
                result = work(tx)
                tx.commit()
        return result

    def _forget_inherited(self) -> None:
        """Keep (never close) the drivers a forked child inherited from its parent."""
        if self._current is not None and self._pid != os.getpid():
            _INHERITED.extend(g.driver for g in (self._current, *self._retired))
            self._current, self._retired, self._pid = None, [], 0

    def after_fork(self) -> None:
        """Forget the parent's drivers; the next call creates this process's own."""
        with self._lock:
            self._forget_inherited()

    def close(self) -> None:
        """Close this process's drivers; the next call opens a new one."""
        with self._lock:
            self._forget_inherited()
            generations = [g for g in (self._current, *self._retired) if g is not None]
            self._current, self._retired, self._pid = None, [], 0
        for generation in generations:
            generation.close()


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


def _describe(exc: Neo4jError) -> str:
    """A short, log-safe description: the status code, never the query or its values."""
    return exc.code or type(exc).__name__
