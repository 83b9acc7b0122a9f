"""Conversation history on PostgreSQL (psycopg2): the store chosen when DATABASE_URL is set.

PostgresDatabase runs each call in one transaction on this process's pool, every wait
bounded (pg_pool.py) and failing fast while the server is unreachable; PostgresHistoryStore
composes one part per concern on it (pg_queries.py, pg_team.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.pg_pool import (
    ConnectionDied,
    Pool,
    Stalled,
    bounded,
    connect_params,
    one_line,
    target_of,
    timeouts_for,
)
from bot.history.pg_queries import PostgresConversations, PostgresDeliveries
from bot.history.pg_schema import LATEST_VERSION, apply_migrations
from bot.history.pg_team import PostgresAnswerCache, PostgresNotices, PostgresTeamLog
from bot.history.store import ComposedStore

logger = logging.getLogger(__name__)
T = TypeVar("T")
Cursor = psycopg2.extensions.cursor
Connection = psycopg2.extensions.connection
# What one attempt runs on its connection, given the statement-timeout prefix ("" or a
# SET LOCAL): a transaction of work, or one round trip.
Job = Callable[[Connection, str], T]

# Connections per process; a gunicorn worker needs at most one per thread.
POOL_SIZE = 10
# Once the store proved unreachable, calls fail at once for this long; then one call probes.
RECONNECT_AFTER_SECONDS = 1.0
# /health must say "down" quickly.
PING_SECONDS = 1.5
# Start-up migration, statement by statement bounded like any call.
MIGRATE_SECONDS = 60.0
# Pools a forked child inherited: never closed there (that would end the parent's sessions
# on the shared sockets) and kept referenced so garbage collection cannot close them either.
_INHERITED: list[Any] = []


class PostgresDatabase:
    """One PostgreSQL database seen from this process: a lazily created pool, calls that
    fail fast while it is unreachable, one bounded transaction per call."""

    def __init__(self, url: str, budget_seconds: float, pool_size: int) -> None:
        self.target = target_of(url)  # what logs show; `url` has the password
        self.url = url
        self.stall_seconds, self.statement_timeout_ms = timeouts_for(budget_seconds)
        self.pool_size = pool_size
        self.schema_ready = False
        self.cache_version = ""  # see pg_queries.Transactions
        self._reset()
        method = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (callback := method()) and callback())

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._busy = 0  # connections checked out, at most pool_size
        self._pool: Pool | None = None
        self._down = False
        self._down_until = 0.0
        self._probing = False

    def _after_fork(self) -> None:
        """In a forked child (a gunicorn worker): forget the parent's pool, build our own."""
        if self._pool is not None:
            _INHERITED.append(self._pool)
        self._reset()

    # -- connections -------------------------------------------------------------------
    def pool(self) -> Pool:
        """This process's pool, opened on first use."""
        with self._lock:
            if self._pool is None:
                params = connect_params(self.url, self.statement_timeout_ms, "pool")
                self._pool = Pool(self.pool_size, lambda: psycopg2.connect(**params))
                logger.info(
                    "history: PostgreSQL pool opened in process %d (%s, up to %d connections,"
                    " statement_timeout %d ms, %.2f s per round trip)",
                    os.getpid(),
                    self.target,
                    self.pool_size,
                    self.statement_timeout_ms,
                    self.stall_seconds,
                )
            return self._pool

    def _refusing(self) -> bool:
        """Known down: within the fail-fast window, or while another call probes."""
        return self._down and (time.monotonic() < self._down_until or self._probing)

    def _admit(self) -> bool:
        """Refuse at once while the store is known down; True when this call is the probe."""
        with self._lock:
            if self._refusing():
                raise HistoryUnavailable("postgresql unreachable (reconnecting shortly)")
            self._probing = self._down
            return self._down

    def _mark_down(self, exc: BaseException) -> HistoryUnavailable:
        with self._lock:
            self._down_until = time.monotonic() + RECONNECT_AFTER_SECONDS
            self._probing = False
            first, self._down = not self._down, True
            pool = self._pool
            self._slot_freed.notify_all()  # callers queued for a slot give up now
        if pool is not None:
            pool.drop_idle()
        if first:
            logger.warning(
                "history: PostgreSQL unreachable (%s); answering without history until it is back",
                one_line(exc),
            )
        return HistoryUnavailable(f"postgresql unreachable: {one_line(exc)}")

    def _mark_up(self) -> None:
        """The server answered: the store is reachable."""
        if not self._down:
            return
        with self._lock:
            was_down, self._down, self._probing = self._down, False, False
        if was_down:
            logger.info("history: PostgreSQL reachable again")

    def _take_slot(self, deadline: Deadline, probe: bool) -> None:
        """Wait for one of pool_size connections, until the deadline or the store is down."""
        with self._slot_freed:
            while True:
                # Also after the wait: a slot freed by a call that found the store down
                # would only lead onto the same dead path.
                if not probe and self._refusing():
                    raise HistoryUnavailable("postgresql unreachable (reconnecting shortly)")
                if self._busy < self.pool_size:
                    break
                if deadline.expired():
                    raise HistoryUnavailable(
                        f"postgresql: all {self.pool_size} connections busy until the deadline"
                    )
                self._slot_freed.wait(deadline.remaining())
            self._busy += 1

    def _give_slot(self) -> None:
        with self._slot_freed:
            self._busy -= 1
            self._slot_freed.notify()

    def _unavailable(self, exc: Stalled) -> HistoryUnavailable:
        """A stalled wait: the store is down, or this call merely ran out of time."""
        if exc.dead:
            return self._mark_down(exc)
        return HistoryUnavailable(f"postgresql: no time left in the response budget ({exc})")

    def run(self, deadline: Deadline, work: Callable[[Cursor], T]) -> T:
        """`work` in one transaction, every wait bounded; a dead connection is replaced once."""
        return self._attempts(deadline, lambda conn, limit: _in_transaction(conn, limit, work))

    def rows(self, deadline: Deadline, sql: str, params: tuple | dict) -> list[tuple]:
        """`sql` in one round trip: a statement, or several that succeed or fail together;
        the last one's rows (empty for one that returns none). Bounded and retried as `run`."""
        return self._attempts(deadline, lambda conn, limit: _one_trip(conn, limit, sql, params))

    def _attempts(self, deadline: Deadline, job: Job[T]) -> T:
        """`run` and `rows`: `job` on a bounded connection, twice at most."""
        for attempt in (1, 2):
            if deadline.expired():
                raise HistoryUnavailable("postgresql: no time left in the response budget")
            probe = self._admit()
            try:
                self._take_slot(deadline, probe)
                try:
                    with bounded(deadline, self.stall_seconds):
                        return self._transaction(deadline, job)
                finally:
                    self._give_slot()
            except ConnectionDied as died:
                if attempt == 2:
                    raise HistoryUnavailable(f"postgresql: {died}") from None
                logger.info("history: a PostgreSQL connection died (%s); retrying once", died)
            finally:
                if probe:
                    with self._lock:
                        self._probing = False
        raise AssertionError("unreachable")

    def _transaction(self, deadline: Deadline, job: Job[T]) -> T:
        """One attempt: a connection, `job` with the statement timeout left, the connection
        back."""
        pool = self.pool()
        try:
            conn = pool.checkout()
        except psycopg2.Error as exc:
            raise self._mark_down(exc) from None
        except Stalled as exc:
            raise self._unavailable(exc) from None
        try:
            if not self.schema_ready:
                self._ensure_schema(conn)
            # A tenth early: the server's cancel, which leaves the connection usable, should
            # arrive before the client gives up on it at the deadline.
            remaining_ms = int(deadline.remaining() * 900)
            limit = ""
            if remaining_ms < self.statement_timeout_ms:
                limit = f"SET LOCAL statement_timeout = {max(1, remaining_ms)};"
            result = job(conn, limit)
        except Stalled as exc:
            pool.putconn(conn, close=True)
            raise self._unavailable(exc) from None
        except psycopg2.Error as exc:
            dead = bool(conn.closed)
            pool.checkin(conn, discard=dead)
            if dead:
                raise ConnectionDied(one_line(exc)) from None
            self._mark_up()  # the server answered, with an error
            raise HistoryUnavailable(f"postgresql: {one_line(exc)}") from None
        except BaseException:
            pool.checkin(conn, discard=True)
            raise
        pool.checkin(conn)
        self._mark_up()
        return result

    # -- schema ------------------------------------------------------------------------
    def _ensure_schema(self, conn: Connection) -> int:
        """Apply missing migrations (safe from many workers at once); returns the version."""
        found = apply_migrations(conn)
        if found < LATEST_VERSION:
            logger.info(
                "history: PostgreSQL schema migrated to version %d in process %d (from %d)",
                LATEST_VERSION,
                os.getpid(),
                found,
            )
        self.schema_ready = True
        return max(found, LATEST_VERSION)

    def migrate(self) -> int:
        """Create or upgrade the schema now, on a connection of its own; returns the version."""
        with bounded(Deadline(MIGRATE_SECONDS), self.stall_seconds):
            try:
                conn = psycopg2.connect(
                    **connect_params(self.url, self.statement_timeout_ms, "migrate")
                )
            except (psycopg2.Error, Stalled) as exc:
                raise HistoryUnavailable(f"postgresql unreachable: {one_line(exc)}") from None
            try:
                return self._ensure_schema(conn)
            except (psycopg2.Error, Stalled) as exc:
                raise HistoryUnavailable(f"postgresql: migration failed: {one_line(exc)}") from None
            finally:
                # Closed before gunicorn forks, so no worker inherits this socket.
                conn.close()

    def close(self) -> None:
        """Close this process's pool; a later call opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and not pool.closed:
            pool.closeall()


def _in_transaction(conn: Connection, limit: str, work: Callable[[Cursor], T]) -> T:
    """`work` on a cursor in one transaction (`limit` first), committed."""
    with conn.cursor() as cur:
        if limit:
            cur.execute(limit)
        result = work(cur)
    conn.commit()
    return result


def _one_trip(conn: Connection, limit: str, sql: str, params: Any) -> list[tuple]:
    """`sql` on an autocommit session: sent as one query, which PostgreSQL runs as one
    implicit transaction (SET LOCAL included), so no BEGIN and no COMMIT round trip."""
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(limit + sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        if not conn.closed:
            conn.autocommit = False


class PostgresHistoryStore(ComposedStore):
    """HistoryStore on PostgreSQL: the concern parts on one deadline-bounded database."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        budget_seconds: float = 12.0,
        pool_size: int = POOL_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = PostgresDatabase(url, budget_seconds, pool_size)
        # One part per concern, in the order ComposedStore takes them.
        parts = (
            PostgresDeliveries,
            PostgresConversations,
            PostgresNotices,
            PostgresTeamLog,
            PostgresAnswerCache,
        )
        super().__init__(*(part(self._db, clock) for part in parts))

    def migrate(self) -> int:
        """Create or upgrade the schema now, on a connection of its own; returns the version."""
        return self._db.migrate()

    def ping(self) -> None:
        """One round trip, bounded by a short deadline."""
        self._db.run(Deadline(PING_SECONDS), lambda cur: cur.execute("SELECT 1"))

    def close(self) -> None:
        """Close this process's pool; a later call opens a new one."""
        self._db.close()
