"""The neo4j driver behind a deadline: every Bolt call bounded, a stuck one torn down.

What bounds what in the neo4j 6.x driver: `connection_timeout` bounds the TCP connect, and
`connection_acquisition_timeout` the whole acquisition (connect, TLS, Bolt handshake,
HELLO, and the RESET that checks a pooled connection idle for `liveness_check_timeout`).
Nothing bounds a read once a query is sent: the socket waits without a timeout unless the
server sends the `connection.recv_timeout_seconds` hint (FalkorDB does not), and TCP keeps
a silent connection for hours. On a network that drops packets the reading thread waits
for ever, and `Future.cancel()` cannot stop a call already running.

So each transaction runs on a thread of a *generation* (generation.py: one driver and its
thread pool) and its caller waits at most until its deadline. A generation whose
transaction outlives its deadline, or whose threads are all busy while none has finished
for STALL_SECONDS, is retired: new work goes to a fresh generation at once, and the
retired driver is closed as soon as none of its transactions has time left. Closing shuts
down every socket of its pool, in use or not, so a read on a dead socket returns with an
error and frees its thread. (No public API closes one connection, and the driver calls
`close` unsafe while sessions are in use; it happens only when all of them are past their
deadlines and nobody waits for their results. tests/test_graph_app.py and
tests/knowledge/test_graph_blackhole.py pin the behaviour on a black-holed network.) At
most MAX_RETIRED generations wait for their threads; beyond that, a stuck one fails fast.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.graph.generation import Generation

logger = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[neo4j.Transaction], T]
Attempt = Callable[[neo4j.Driver, int], T]  # one try, given how many failed before it

# Acquiring a connection (routing, TCP, TLS, Bolt handshake, or a pooled one's liveness
# RESET) may take half a call's budget, and at most: a webhook's budget (Twilio's 15 s at
# most) keeps time for a retry, while ingest, the CLI and `check` wait out a cold TLS
# connect to Aura behind its routing table. Their attempts start short and double: a
# handshake that is never answered (FalkorDB leaves one after each closed session) costs
# the first attempt's 1.5 s, not the longest wait.
WEBHOOK_BUDGET_SECONDS = 15.0  # a deadline longer than this is not a webhook's
WEBHOOK_ACQUIRE_SECONDS = 1.5
OFFLINE_ACQUIRE_SECONDS = 10.0
RETRY_DELAY_SECONDS = 0.1  # first retry delay, doubled after each failed attempt
MIN_ATTEMPT_SECONDS = 0.05  # no attempt starts with less time left than this
WORKERS = 32  # transactions in flight per generation: gunicorn's threads per worker
# Retired generations still waiting for their threads: with the current one, a process
# holds at most (1 + MAX_RETIRED) drivers and (1 + MAX_RETIRED) * WORKERS graph threads.
MAX_RETIRED = 3
# Drivers a forked child inherited: never closed there (that would end the parent's
# sessions on the shared sockets), kept referenced so garbage collection cannot warn.
_INHERITED: list[Any] = []


class GraphQueryError(KnowledgeUnavailable):
    """The server answered with an error for this query (syntax, missing index, ...)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code  # the server's status code, e.g. Neo.ClientError.Security.Forbidden


@dataclass(frozen=True)
class ServerInfo:
    """What the server said about itself when the connection was opened."""

    agent: str  # "Neo4j/5.26.0"; FalkorDB 4.16 also says "Neo4j/5.13.0"
    bolt: str  # the negotiated Bolt protocol version, "5.4"


class _OncePerProcess(logging.Filter):
    """Each distinct server notification once: a deprecation warning matters, not its
    repetition on every search."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        if len(self._seen) < 1000:
            self._seen.add(message)
        return True


logging.getLogger("neo4j.notifications").addFilter(_OncePerProcess())


def _acquire_seconds(budget: float, tries: int = 0) -> float:
    """The connection-acquisition timeout of a call's attempt after `tries` failed ones,
    with `budget` seconds left."""
    cap = WEBHOOK_ACQUIRE_SECONDS
    if budget > WEBHOOK_BUDGET_SECONDS:
        cap = min(OFFLINE_ACQUIRE_SECONDS, WEBHOOK_ACQUIRE_SECONDS * 2**tries)
    # Half the budget at most, so one stalled handshake still leaves time for a retry.
    return min(cap, budget, max(0.2, budget / 2))


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
        self._current: Generation | None = None
        self._retired: list[Generation] = []

    def __repr__(self) -> str:  # never show the password
        return f"GraphClient(uri={self.uri!r}, database={self.database!r})"

    def _state(self) -> Generation:
        """This process's current generation, created on first use and after a fork."""
        with self._lock:
            return self._generation()

    def _generation(self) -> Generation:
        """The generation for new work (the lock is held): fresh when the current is stuck."""
        pid = os.getpid()
        if self._current is None or self._pid != pid:
            self._forget_inherited()
            self._current = Generation(self.uri, self._auth, self.workers)
            self._pid = pid
        elif self._current.stuck() and not self._retire(self._current, "every thread is stuck"):
            raise KnowledgeUnavailable("graph busy")
        return self._current

    def _retire(self, generation: Generation, reason: str) -> bool:
        """Send new work to a fresh generation and close this one when it is overdue."""
        if generation is not self._current:
            return True  # already retired
        if len(self._retired) >= MAX_RETIRED:
            logger.warning("graph client: %s, but %d drivers still wait", reason, MAX_RETIRED)
            return False
        logger.warning("graph client: %s; a fresh driver takes new work", reason)
        self._retired.append(generation)
        self._current = Generation(self.uri, self._auth, self.workers)
        threading.Thread(
            target=self._reap, args=(generation,), name="graph-reaper", daemon=True
        ).start()
        return True

    def _reap(self, generation: Generation) -> None:
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
        return self._run(
            lambda d, n: self._attempt(d, n, neo4j.READ_ACCESS, work, deadline), deadline
        )

    def write(self, work: Work[T], deadline: Deadline) -> T:
        """Run `work` in a write transaction; raises KnowledgeUnavailable."""
        return self._run(
            lambda d, n: self._attempt(d, n, neo4j.WRITE_ACCESS, work, deadline), deadline
        )

    def server_info(self, deadline: Deadline) -> ServerInfo:
        """The server's agent string and Bolt version; raises KnowledgeUnavailable, and
        GraphQueryError when the server refuses (credentials, ...)."""

        def ask(tx: neo4j.Transaction) -> ServerInfo:
            # What `driver.get_server_info()` reports, from a query's summary: that method
            # takes no session settings (database, acquisition timeout) outside a preview.
            server = tx.run("RETURN 1 AS ok").consume().server
            bolt = ".".join(str(part) for part in server.protocol_version)
            return ServerInfo(agent=str(server.agent or ""), bolt=bolt)

        return self.read(ask, deadline)

    def _run(self, attempt: Attempt[T], deadline: Deadline) -> T:
        """Run attempts on a graph thread and wait for them until the deadline, not longer."""
        if deadline.expired():
            raise KnowledgeUnavailable("timeout")
        with self._lock:
            generation = self._generation()
            driver = generation.driver
            future = generation.submit(lambda: _transact(driver, attempt, deadline), deadline)
        try:
            return future.result(timeout=deadline.remaining())
        except FutureTimeout:
            # Still running at its deadline, most likely reading from a dead connection that
            # only closing its driver ends: new work must not wait behind it.
            with self._lock:
                self._retire(generation, "a transaction outlived its deadline")
            raise KnowledgeUnavailable("timeout") from None

    def _attempt(
        self, driver: neo4j.Driver, tries: int, mode: str, work: Work[T], deadline: Deadline
    ) -> T:
        """One transaction (after `tries` failed ones): acquire a connection, run `work`,
        commit."""
        budget = deadline.remaining()
        if budget <= 0:
            raise KnowledgeUnavailable("timeout")
        with driver.session(
            database=self.database,
            default_access_mode=mode,
            connection_acquisition_timeout=_acquire_seconds(budget, tries),
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


def _transact(driver: neo4j.Driver, attempt: Attempt[T], deadline: Deadline) -> T:
    """Attempts until one succeeds, one fails for good, or no time is left to retry."""
    delay = RETRY_DELAY_SECONDS
    for tries in itertools.count():
        try:
            return attempt(driver, tries)
        except Neo4jError as exc:
            if not exc.is_retryable():
                raise GraphQueryError(
                    f"graph query failed: {_describe(exc)}", exc.code or ""
                ) from None
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
    raise AssertionError("unreachable")


def _describe(exc: Neo4jError) -> str:
    """A short, log-safe description: the status code, never the query or its values."""
    return exc.code or type(exc).__name__
