"""PostgreSQL connections, bounded: the wait callback that ends every libpq wait by the
call's bound, the parameters connections are opened with, and the pool of idle ones."""

from __future__ import annotations

import math
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.settings import ConfigError

Connection = psycopg2.extensions.connection

# A round trip may outlast statement_timeout by this much (latency, a TLS connect) before
# the client calls the connection dead: a live server would have answered or cancelled.
STALL_GRACE_SECONDS = 0.5
# Kernel-level limits for a peer that vanished: idle pooled connections are probed after
# 5 s, and data left unacknowledged for 10 s ends the connection instead of being
# retransmitted for ~15 minutes (tcp_retries2). Loopback and a stalled server still ACK,
# so these never replace the client-side bound below.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2"}
KEEPALIVES_COUNT = "3"
TCP_USER_TIMEOUT_MS = 10_000


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
class Stalled(Exception):
    """A libpq wait outlived its bound; psycopg2 closed the connection (or never opened it)."""

    def __init__(self, waited: float, dead: bool) -> None:
        super().__init__(f"no reply from the server in {waited:.2f} s")
        self.dead = dead  # the stall bound passed (not merely the caller's deadline)


class ConnectionDied(Exception):
    """A connection broke under a statement (a server restart): worth one retry."""


_bound = threading.local()


@contextmanager
def bounded(deadline: Deadline, stall_seconds: float) -> Iterator[None]:
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
    """psycopg2's wait callback: libpq's non-blocking protocol, waits bounded by `bounded`."""
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
            raise Stalled(time.monotonic() - started, dead=end >= stall_end)
        _ready(conn.fileno(), state == psycopg2.extensions.POLL_WRITE, timeout)


# Blocking libpq (PQexec, PQconnectdb) waits in C for as long as the kernel keeps the
# socket: on a black-holed network that is TCP's retransmission time, whatever the
# deadline, and statement_timeout never reaches the server. With a wait callback psycopg2
# drives libpq's non-blocking API for every connect, query, commit and rollback and calls
# back here to wait, so select() with a timeout bounds all of them. It is process-wide:
# only the PostgreSQL store uses psycopg2 (see DESIGN.md); other connections keep unbounded
# waits.
psycopg2.extensions.set_wait_callback(_wait)


def has_input(conn: Connection) -> bool:
    """An idle connection with bytes to read was closed by the server (restart, kill)."""
    return _ready(conn.fileno(), write=False, timeout=0)


# -- the pool: idle connections of one process ------------------------------------------
class Pool:
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

    def checkout(self) -> Connection:
        """A live connection: idle ones the server closed meanwhile are dropped first."""
        for _ in range(self.size + 1):
            conn = self.getconn()
            if conn.closed or has_input(conn):
                self.putconn(conn, close=True)
                continue
            return conn
        raise HistoryUnavailable("postgresql: no live connection")

    def checkin(self, conn: Connection, discard: bool = False) -> None:
        """Return a checked-out connection: rolled back for reuse, or closed if broken."""
        if not discard and not conn.closed:
            try:
                conn.rollback()  # no round trip unless a transaction is open
            except (psycopg2.Error, Stalled):
                discard = True
        self.putconn(conn, close=discard or bool(conn.closed))

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


# -- opening connections ------------------------------------------------------------------
def target_of(url: str) -> str:
    """host:port/dbname of a DATABASE_URL, as logs may show it; ConfigError if it is none."""
    try:
        params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.Error:
        raise ConfigError(
            "environment: DATABASE_URL = <hidden>: expected a PostgreSQL URL such as "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    host_port = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
    return f"{host_port}/{params.get('dbname') or params.get('user') or ''}"


def connect_params(url: str, statement_timeout_ms: int, role: str) -> dict[str, str]:
    """libpq parameters for `url`: statement_timeout, application name, TCP keepalives."""
    params = psycopg2.extensions.parse_dsn(url)
    options = params.get("options", "")
    params["options"] = f"{options} -c statement_timeout={statement_timeout_ms}".strip()
    params.setdefault("application_name", f"whatsapp-bot:{os.getpid()}:{role}")
    # (No connect_timeout: libpq ignores it in non-blocking mode; the wait bounds it.)
    for key, value in KEEPALIVES.items():
        params.setdefault(key, value)
    params.setdefault("keepalives_count", KEEPALIVES_COUNT)
    if psycopg2.extensions.libpq_version() >= 120000:  # older libpq rejects the key
        params.setdefault("tcp_user_timeout", str(TCP_USER_TIMEOUT_MS))
    return params
