"""Conversation history on PostgreSQL (psycopg2): the store chosen when DATABASE_URL is set."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from bot.deadline import Deadline
from bot.history.pg_queries import PostgresQueries
from bot.history.pg_schema import ADVISORY_LOCK_KEY, LATEST_VERSION, MIGRATIONS, VERSION_TABLE
from bot.history.pg_team import PostgresTeamQueries
from bot.history.store import HistoryUnavailable, PruneSchedule
from bot.settings import ConfigError

logger = logging.getLogger(__name__)
T = TypeVar("T")
Cursor = psycopg2.extensions.cursor
Connection = psycopg2.extensions.connection

# Connections per process; a gunicorn worker needs at most one per thread.
POOL_SIZE = 10
# After a failed connect, fail fast for this long instead of paying a connect per call.
RECONNECT_AFTER_SECONDS = 1.0
# /health must say "down" quickly; a refused connection fails at once anyway.
PING_SECONDS = 1.5
# Pools a forked child inherited: never closed there (that would end the parent's sessions
# on the shared sockets) and kept referenced so garbage collection cannot close them either.
_INHERITED: list[Any] = []


def timeouts_for(budget_seconds: float) -> tuple[int, int]:
    """(connect_timeout in s, statement_timeout in ms) derived from the response budget."""
    # libpq counts whole seconds and treats anything below 2 as 2.
    connect = max(2, min(5, int(budget_seconds / 6)))
    # One statement may take a sixth of the budget: a stuck query costs the answer its
    # memory, never its reply.
    statement_ms = int(min(max(budget_seconds / 6, 0.25), 5.0) * 1000)
    return connect, statement_ms


def one_line(exc: BaseException) -> str:
    """A driver error as one log-safe line (libpq messages carry no password)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _has_input(conn: Connection) -> bool:
    """An idle connection with bytes to read was closed by the server (restart, kill)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([conn.fileno()], [], [], 0)[0])


class _Pool(psycopg2.pool.ThreadedConnectionPool):
    """psycopg2's pool, connecting on demand yet keeping up to `size` idle connections."""

    def __init__(self, size: int, is_down: Callable[[], bool], **params: str) -> None:
        super().__init__(0, size, **params)
        # minconn connections are opened up front but returned ones beyond it are closed:
        # start at 0 (no connect before it is needed), then keep them all.
        self.minconn = size
        self._is_down = is_down

    def _connect(self, key: Any = None) -> Connection:
        # psycopg2 connects while holding the pool's lock: threads queued behind a connect
        # that timed out must not each wait out connect_timeout again.
        if self._is_down():
            raise psycopg2.OperationalError("unreachable a moment ago")
        return super()._connect(key)


class PostgresHistoryStore(PostgresQueries, PostgresTeamQueries):
    """HistoryStore on PostgreSQL: one lazily created pool per process, deadline-bounded."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        budget_seconds: float = 12.0,
        pool_size: int = POOL_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            params = psycopg2.extensions.parse_dsn(url)
        except psycopg2.Error:
            raise ConfigError(
                "environment: DATABASE_URL = <hidden>: expected a PostgreSQL URL such as "
                "postgresql://user:password@host:5432/dbname"
            ) from None
        self._url = url
        self.target = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/" + (
            params.get("dbname") or params.get("user") or ""
        )
        self.connect_timeout, self.statement_timeout_ms = timeouts_for(budget_seconds)
        self.pool_size = pool_size
        self.schema_ready = False
        self._clock = clock
        self._pruning = PruneSchedule()
        self._reset()
        method = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (callback := method()) and callback())

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pool: _Pool | None = None
        self._slots = threading.BoundedSemaphore(self.pool_size)
        self._down_until = 0.0
        self._down = False

    def _after_fork(self) -> None:
        """In a forked child (a gunicorn worker): forget the parent's pool, build our own."""
        if self._pool is not None:
            _INHERITED.append(self._pool)
        self._reset()

    def _params(self, role: str) -> dict[str, str]:
        params = psycopg2.extensions.parse_dsn(self._url)
        options = params.get("options", "")
        params["options"] = f"{options} -c statement_timeout={self.statement_timeout_ms}".strip()
        params.setdefault("connect_timeout", str(self.connect_timeout))
        params.setdefault("application_name", f"whatsapp-bot:{os.getpid()}:{role}")
        # Notice a peer that vanished without closing (network loss, failover).
        for key, value in (("keepalives", "1"), ("keepalives_idle", "30")):
            params.setdefault(key, value)
        return params

    # -- connections -------------------------------------------------------------------
    def _get_pool(self) -> _Pool:
        with self._lock:
            if self._pool is None:
                self._pool = _Pool(self.pool_size, self._is_down, **self._params("pool"))
                logger.info(
                    "history: PostgreSQL pool opened in process %d (%s, up to %d connections,"
                    " statement_timeout %d ms)",
                    os.getpid(),
                    self.target,
                    self.pool_size,
                    self.statement_timeout_ms,
                )
            return self._pool

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _mark_down(self, exc: BaseException) -> HistoryUnavailable:
        self._down_until = time.monotonic() + RECONNECT_AFTER_SECONDS
        if not self._down:
            self._down = True
            logger.warning(
                "history: PostgreSQL unreachable (%s); answering without history until it is back",
                one_line(exc),
            )
        return HistoryUnavailable(f"postgresql unreachable: {one_line(exc)}")

    def _checkout(self, pool: _Pool) -> Connection:
        """A live connection: idle ones the server closed meanwhile are dropped first."""
        for _ in range(self.pool_size + 1):
            try:
                conn = pool.getconn()
            except psycopg2.pool.PoolError:
                raise HistoryUnavailable("postgresql: the store is closed") from None
            except psycopg2.Error as exc:
                raise self._mark_down(exc) from None
            if conn.closed or _has_input(conn):
                pool.putconn(conn, close=True)
                continue
            if self._down:
                self._down = False
                logger.info("history: PostgreSQL reachable again")
            return conn
        raise HistoryUnavailable("postgresql: no live connection")

    @staticmethod
    def _checkin(pool: _Pool, conn: Connection, discard: bool = False) -> None:
        if not discard and not conn.closed:
            try:
                conn.rollback()  # no round trip unless a transaction is open
            except psycopg2.Error:
                discard = True
        try:
            pool.putconn(conn, close=discard or bool(conn.closed))
        except psycopg2.pool.PoolError:  # the pool was closed meanwhile
            conn.close()

    def _run(self, deadline: Deadline, work: Callable[[Cursor], T]) -> T:
        """`work` in one transaction; a connection that died is replaced and retried once."""
        for attempt in (1, 2):
            if self._is_down():
                raise HistoryUnavailable("postgresql unreachable (reconnecting shortly)")
            if deadline.expired():
                raise HistoryUnavailable("postgresql: no time left in the response budget")
            # Bounded wait for a free connection, where the pool alone would raise PoolError.
            if not self._slots.acquire(timeout=deadline.remaining()):
                raise HistoryUnavailable(
                    f"postgresql: all {self.pool_size} connections busy until the deadline"
                )
            try:
                pool = self._get_pool()
                conn = self._checkout(pool)
                try:
                    if not self.schema_ready:
                        self._ensure_schema(conn)
                    with conn.cursor() as cur:
                        remaining_ms = int(deadline.remaining() * 1000)
                        if remaining_ms < self.statement_timeout_ms:
                            cur.execute("SET LOCAL statement_timeout = %s", (max(1, remaining_ms),))
                        result = work(cur)
                    conn.commit()
                except psycopg2.Error as exc:
                    dead = bool(conn.closed)
                    self._checkin(pool, conn, discard=dead)
                    if dead and attempt == 1:
                        logger.info(
                            "history: a PostgreSQL connection died (%s); retrying once",
                            one_line(exc),
                        )
                        continue
                    raise HistoryUnavailable(f"postgresql: {one_line(exc)}") from None
                except BaseException:
                    self._checkin(pool, conn, discard=True)
                    raise
                self._checkin(pool, conn)
                return result
            finally:
                self._slots.release()
        raise HistoryUnavailable("postgresql: the connection died twice")

    # -- schema ------------------------------------------------------------------------
    def _ensure_schema(self, conn: Connection) -> int:
        """Apply missing migrations under an advisory lock; safe from many workers at once."""
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
            cur.execute(VERSION_TABLE)
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            current = cur.fetchone()[0]
            for version, sql in MIGRATIONS:
                if version > current:
                    cur.execute(sql)
                    cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        conn.commit()
        if current < LATEST_VERSION:
            logger.info(
                "history: PostgreSQL schema migrated to version %d in process %d (from %d)",
                LATEST_VERSION,
                os.getpid(),
                current,
            )
        self.schema_ready = True
        return max(current, LATEST_VERSION)

    def migrate(self) -> int:
        """Create or upgrade the schema now, on a connection of its own; returns the version."""
        try:
            conn = psycopg2.connect(**self._params("migrate"))
        except psycopg2.Error as exc:
            raise HistoryUnavailable(f"postgresql unreachable: {one_line(exc)}") from None
        try:
            return self._ensure_schema(conn)
        except psycopg2.Error as exc:
            raise HistoryUnavailable(f"postgresql: migration failed: {one_line(exc)}") from None
        finally:
            # Closed before gunicorn forks, so no worker inherits this socket.
            conn.close()

    # -- lifecycle ---------------------------------------------------------------------
    def ping(self) -> None:
        """One round trip, bounded by a short deadline."""
        self._run(Deadline(PING_SECONDS), lambda cur: cur.execute("SELECT 1"))

    def close(self) -> None:
        """Close this process's pool; a later call opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and not pool.closed:
            pool.closeall()
