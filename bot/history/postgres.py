"""Conversation history on PostgreSQL (psycopg2): the store chosen when DATABASE_URL is set."""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.pg_queries import PostgresQueries
from bot.history.pg_schema import ADVISORY_LOCK_KEY, LATEST_VERSION, MIGRATIONS, VERSION_TABLE
from bot.history.pg_team import PostgresTeamQueries
from bot.history.store import PruneSchedule
from bot.settings import ConfigError

logger = logging.getLogger(__name__)
T = TypeVar("T")
Cursor = psycopg2.extensions.cursor
Connection = psycopg2.extensions.connection

# Connections per process; a gunicorn worker needs at most one per thread.
POOL_SIZE = 10
# Once the store proved unreachable, calls fail at once for this long; then one call probes.
RECONNECT_AFTER_SECONDS = 1.0
# /health must say "down" quickly.
PING_SECONDS = 1.5
# A round trip may outlast statement_timeout by this much (latency, a TLS connect) before
# the client calls the connection dead: a live server would have answered or cancelled.
STALL_GRACE_SECONDS = 0.5
# Start-up migration, statement by statement bounded like any call.
MIGRATE_SECONDS = 60.0
# Kernel-level limits for a peer that vanished: idle pooled connections are probed after
# 5 s, and data left unacknowledged for 10 s ends the connection instead of being
# retransmitted for ~15 minutes (tcp_retries2). Loopback and a stalled server still ACK,
# so these never replace the client-side bound below.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2"}
KEEPALIVES_COUNT = "3"
TCP_USER_TIMEOUT_MS = 10_000
# Pools a forked child inherited: never closed there (that would end the parent's sessions
# on the shared sockets) and kept referenced so garbage collection cannot close them either.
_INHERITED: list[Any] = []


def timeouts_for(budget_seconds: float) -> tuple[float, int]:
    """(stall bound of one round trip in s, statement_timeout in ms) from the response budget."""
    # One statement may take a sixth of the budget: a stuck query costs the answer its
    # memory, never its reply.
    statement_ms = int(min(max(budget_seconds / 6, 0.25), 5.0) * 1000)
    return statement_ms / 1000 + STALL_GRACE_SECONDS, statement_ms


def one_line(exc: BaseException) -> str:
    """A driver error as one log-safe line (libpq messages carry no password)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# -- waiting: every libpq wait of a store call ends by the call's bound -----------------
class _Stalled(Exception):
    """A libpq wait outlived its bound; psycopg2 closed the connection (or never opened it)."""

    def __init__(self, waited: float, dead: bool) -> None:
        super().__init__(f"no reply from the server in {waited:.2f} s")
        self.dead = dead  # the stall bound passed (not merely the caller's deadline)


class _ConnectionDied(Exception):
    """A connection broke under a statement (a server restart): worth one retry."""


_bound = threading.local()


@contextmanager
def _bounded(deadline: Deadline, stall_seconds: float) -> Iterator[None]:
    """libpq waits in this thread end by `deadline`, each round trip after `stall_seconds`."""
    previous = getattr(_bound, "value", None)
    _bound.value = (time.monotonic() + deadline.remaining(), stall_seconds)
    try:
        yield
    finally:
        _bound.value = previous


def _ready(fd: int, write: bool, timeout: float | None) -> bool:
    """Wait until `fd` is readable (or writable); False when `timeout` s passed first."""
    if hasattr(select, "poll"):  # any fd number, unlike select()
        poller = select.poll()
        poller.register(fd, select.POLLOUT if write else select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, math.ceil(timeout * 1000))))
    readable, writable, _ = select.select([] if write else [fd], [fd] if write else [], [], timeout)
    return bool(readable or writable)


def _wait(conn: Connection) -> None:
    """psycopg2's wait callback: libpq's non-blocking protocol, waits bounded by `_bounded`."""
    bound = getattr(_bound, "value", None)
    started = time.monotonic()
    end = stall_end = None
    if bound is not None:
        stall_end = started + bound[1]
        end = min(bound[0], stall_end)
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state not in (psycopg2.extensions.POLL_READ, psycopg2.extensions.POLL_WRITE):
            raise psycopg2.OperationalError(f"bad state from poll: {state}")
        # Outside a store call (tests, tools) a wait is unbounded, as a blocking query's is
        # (libpq's connect_timeout, though, applies only to blocking connects).
        timeout = None if end is None else end - time.monotonic()
        if timeout is not None and timeout <= 0:
            # psycopg2 answers an error from the callback by closing the connection: its
            # socket may deliver the reply any time later, so it is never reused.
            raise _Stalled(time.monotonic() - started, dead=end >= stall_end)
        _ready(conn.fileno(), state == psycopg2.extensions.POLL_WRITE, timeout)


# Blocking libpq (PQexec, PQconnectdb) waits in C for as long as the kernel keeps the
# socket: on a black-holed network that is TCP's retransmission time, whatever the
# deadline, and statement_timeout never reaches the server. With a wait callback psycopg2
# drives libpq's non-blocking API for every connect, query, commit and rollback and calls
# back here to wait, so select() with a timeout bounds all of them. It is process-wide:
# only this module uses psycopg2 (see DESIGN.md), and other connections keep unbounded waits.
psycopg2.extensions.set_wait_callback(_wait)


def _has_input(conn: Connection) -> bool:
    """An idle connection with bytes to read was closed by the server (restart, kill)."""
    return _ready(conn.fileno(), write=False, timeout=0)


class _Pool:
    """Idle connections kept for reuse (up to `size`); connecting holds no lock."""

    def __init__(self, size: int, connect: Callable[[], Connection]) -> None:
        self.size = size
        self.closed = False
        self._connect = connect
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def getconn(self) -> Connection:
        """The most recently returned idle connection, else a new one."""
        with self._lock:
            if self.closed:
                raise HistoryUnavailable("postgresql: the store is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def putconn(self, conn: Connection, close: bool = False) -> None:
        """Keep `conn` for reuse, or close it (dead, surplus, or the pool closed)."""
        with self._lock:
            if not (close or conn.closed or self.closed) and len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def drop_idle(self) -> None:
        """Close the idle connections (presumed dead with the network they were opened on)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()  # non-blocking connections: never waits on the dead peer

    def closeall(self) -> None:
        """Close the idle connections now and those checked out when they come back."""
        with self._lock:
            self.closed = True
        self.drop_idle()


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
        self.stall_seconds, self.statement_timeout_ms = timeouts_for(budget_seconds)
        self.pool_size = pool_size
        self.schema_ready = False
        self._clock = clock
        self._pruning = PruneSchedule()
        self._reset()
        method = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (callback := method()) and callback())

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._busy = 0  # connections checked out, at most pool_size
        self._pool: _Pool | None = None
        self._down = False
        self._down_until = 0.0
        self._probing = False

    def _after_fork(self) -> None:
        """In a forked child (a gunicorn worker): forget the parent's pool, build our own."""
        if self._pool is not None:
            _INHERITED.append(self._pool)
        self._reset()

    def _params(self, role: str) -> dict[str, str]:
        params = psycopg2.extensions.parse_dsn(self._url)
        options = params.get("options", "")
        params["options"] = f"{options} -c statement_timeout={self.statement_timeout_ms}".strip()
        params.setdefault("application_name", f"whatsapp-bot:{os.getpid()}:{role}")
        # (No connect_timeout: libpq ignores it in non-blocking mode; the wait bounds it.)
        for key, value in KEEPALIVES.items():
            params.setdefault(key, value)
        params.setdefault("keepalives_count", KEEPALIVES_COUNT)
        if psycopg2.extensions.libpq_version() >= 120000:  # older libpq rejects the key
            params.setdefault("tcp_user_timeout", str(TCP_USER_TIMEOUT_MS))
        return params

    # -- connections -------------------------------------------------------------------
    def _get_pool(self) -> _Pool:
        with self._lock:
            if self._pool is None:
                params = self._params("pool")
                self._pool = _Pool(self.pool_size, lambda: psycopg2.connect(**params))
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

    def _unavailable(self, exc: _Stalled) -> HistoryUnavailable:
        """A stalled wait: the store is down, or this call merely ran out of time."""
        if exc.dead:
            return self._mark_down(exc)
        return HistoryUnavailable(f"postgresql: no time left in the response budget ({exc})")

    def _checkout(self, pool: _Pool) -> Connection:
        """A live connection: idle ones the server closed meanwhile are dropped first."""
        for _ in range(self.pool_size + 1):
            try:
                conn = pool.getconn()
            except psycopg2.Error as exc:
                raise self._mark_down(exc) from None
            except _Stalled as exc:
                raise self._unavailable(exc) from None
            if conn.closed or _has_input(conn):
                pool.putconn(conn, close=True)
                continue
            return conn
        raise HistoryUnavailable("postgresql: no live connection")

    @staticmethod
    def _checkin(pool: _Pool, conn: Connection, discard: bool = False) -> None:
        if not discard and not conn.closed:
            try:
                conn.rollback()  # no round trip unless a transaction is open
            except (psycopg2.Error, _Stalled):
                discard = True
        pool.putconn(conn, close=discard or bool(conn.closed))

    def _run(self, deadline: Deadline, work: Callable[[Cursor], T]) -> T:
        """`work` in one transaction, every wait bounded; a dead connection is replaced once."""
        for attempt in (1, 2):
            if deadline.expired():
                raise HistoryUnavailable("postgresql: no time left in the response budget")
            probe = self._admit()
            try:
                self._take_slot(deadline, probe)
                try:
                    with _bounded(deadline, self.stall_seconds):
                        return self._transaction(deadline, work)
                finally:
                    self._give_slot()
            except _ConnectionDied as died:
                if attempt == 2:
                    raise HistoryUnavailable(f"postgresql: {died}") from None
                logger.info("history: a PostgreSQL connection died (%s); retrying once", died)
            finally:
                if probe:
                    with self._lock:
                        self._probing = False
        raise AssertionError("unreachable")

    def _transaction(self, deadline: Deadline, work: Callable[[Cursor], T]) -> T:
        """One attempt of `_run`: a connection, `work`, commit, the connection back."""
        pool = self._get_pool()
        conn = self._checkout(pool)
        try:
            if not self.schema_ready:
                self._ensure_schema(conn)
            with conn.cursor() as cur:
                # A tenth early: the server's cancel, which leaves the connection usable,
                # should arrive before the client gives up on it at the deadline.
                remaining_ms = int(deadline.remaining() * 900)
                if remaining_ms < self.statement_timeout_ms:
                    cur.execute("SET LOCAL statement_timeout = %s", (max(1, remaining_ms),))
                result = work(cur)
            conn.commit()
        except _Stalled as exc:
            pool.putconn(conn, close=True)
            raise self._unavailable(exc) from None
        except psycopg2.Error as exc:
            dead = bool(conn.closed)
            self._checkin(pool, conn, discard=dead)
            if dead:
                raise _ConnectionDied(one_line(exc)) from None
            self._mark_up()  # the server answered, with an error
            raise HistoryUnavailable(f"postgresql: {one_line(exc)}") from None
        except BaseException:
            self._checkin(pool, conn, discard=True)
            raise
        self._checkin(pool, conn)
        self._mark_up()
        return result

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
        with _bounded(Deadline(MIGRATE_SECONDS), self.stall_seconds):
            try:
                conn = psycopg2.connect(**self._params("migrate"))
            except (psycopg2.Error, _Stalled) as exc:
                raise HistoryUnavailable(f"postgresql unreachable: {one_line(exc)}") from None
            try:
                return self._ensure_schema(conn)
            except (psycopg2.Error, _Stalled) as exc:
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
