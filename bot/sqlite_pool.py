"""A bounded pool of SQLite connections shared by threads: one per operation, not per thread."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.deadline import Deadline

logger = logging.getLogger(__name__)

# Connections per pool (one pool per store per process), opened only when needed. An
# operation holds its connection for a statement or one transaction, not for a request, so
# far fewer connections than gunicorn threads (128 by default) are ever busy at once: a
# message spends milliseconds in its stores and seconds waiting for the model. Writers no
# longer wait for the file lock while holding a connection in a crowd (they queue in Turns
# below, one of them at a time per process; with SQLite's own busy handler, a pool smaller
# than the thread count once starved them, commit bbfebfc). The bound caps what a worker
# holds: about 2 file descriptors per connection (database and WAL; the -shm file is
# shared) and each connection's page cache (up to 2 MB), and matters most where threads are
# unbounded (Flask's development server: one thread per request).
DEFAULT_SIZE = 32

# Connections a forked child inherited: never used there nor closed (closing an SQLite
# connection in the child can checkpoint and delete the parent's WAL), and kept referenced
# so garbage collection does not close them either.
_INHERITED: list[sqlite3.Connection] = []


class PoolTimeout(sqlite3.OperationalError):
    """Every connection stayed busy until the caller's deadline."""


class PoolClosed(sqlite3.ProgrammingError):
    """The pool was closed; it hands out no more connections."""


class SqlitePool:
    """Up to `size` connections to one SQLite file, shared by threads, idle ones reused LIFO.

    Errors are sqlite3 errors (PoolTimeout, PoolClosed included), so each store translates
    them into its own exception where it already translates SQLite's.
    """

    def __init__(self, path: str, size: int, setup: Callable[[sqlite3.Connection], None]) -> None:
        if size < 1:
            raise ValueError(f"an SQLite pool needs at least one connection, not {size}")
        self.path = path
        self.size = size
        self._setup = setup
        self._closed = False
        self._reset()
        pool = weakref.ref(self)
        os.register_at_fork(
            before=lambda: (p := pool()) is not None and p._before_fork(),
            after_in_child=lambda: (p := pool()) is not None and p.after_fork(),
        )

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[sqlite3.Connection] = []  # a stack: the most recently used on top
        self._mine: set[sqlite3.Connection] = set()  # open ones, idle or checked out
        self._opening = 0  # slots taken by connects in progress
        self._pid = os.getpid()

    @property
    def opened(self) -> int:
        """Connections this process holds open now, idle or in use."""
        with self._cond:
            return len(self._mine)

    @contextmanager
    def connection(self, deadline: Deadline) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, returned clean to the pool afterwards."""
        conn = self.acquire(deadline)
        try:
            yield conn
        finally:
            self.release(conn)

    def acquire(self, deadline: Deadline) -> sqlite3.Connection:
        """An idle connection, else a new one below `size`, else one freed before the deadline."""
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed(f"{self.path}: connection pool closed")
                if self._idle:
                    return self._idle.pop()
                if len(self._mine) + self._opening < self.size:
                    self._opening += 1
                    break
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise PoolTimeout(f"{self.path}: all {self.size} connections busy")
                self._cond.wait(remaining)
        # Connecting runs outside the lock: the set-up's PRAGMAs may wait for the file lock,
        # and returns must not queue behind that.
        try:
            conn = self._connect()
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._cond.notify()  # the slot is free again
            raise
        with self._cond:
            self._opening -= 1
            self._mine.add(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        # Autocommit (isolation_level=None): transactions are explicit, BEGIN IMMEDIATE where
        # they matter. Any thread may use the connection, one at a time: the pool sees to it.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        """Take a connection back: rolled back if a transaction is open, handler cleared."""
        with self._cond:
            if conn not in self._mine:
                return  # the parent process's, checked out across a fork: left untouched
        reusable = _clean(conn)
        with self._cond:
            keep = reusable and not self._closed
            if keep:
                self._idle.append(conn)
            else:
                self._mine.discard(conn)
            self._cond.notify()
        if not keep:
            conn.close()

    def close(self) -> None:
        """Close idle connections now, those in use when they are returned; open no more."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._mine.difference_update(idle)
            self._cond.notify_all()  # waiters find the pool closed
        for conn in idle:
            conn.close()

    def _before_fork(self) -> None:
        # Idle connections are closed before a fork: a child that inherits an open SQLite file
        # shares SQLite's in-process lock bookkeeping for it with its own new connections,
        # without holding the locks that bookkeeping records. gunicorn's master forks with
        # every connection idle, so its workers start clean; the parent reopens on demand.
        with self._cond:
            idle, self._idle = self._idle, []
            self._mine.difference_update(idle)
        for conn in idle:
            try:
                conn.close()
            except sqlite3.Error:  # an at-fork hook must not raise
                logger.warning("sqlite: closing an idle connection before fork failed")

    def after_fork(self) -> None:
        """In a forked child: keep the parent's connections referenced and unused, start empty."""
        if self._pid == os.getpid():
            return  # already done: os.register_at_fork and gunicorn's post_fork both call this
        # No lock: the child has one thread, and another may have held the lock at the fork.
        _INHERITED.extend(self._mine)
        self._reset()


def _clean(conn: sqlite3.Connection) -> bool:
    """Undo what an operation may have left behind; False if the connection is unusable."""
    try:
        conn.set_progress_handler(None, 0)
        if conn.in_transaction:
            # An exception between BEGIN and COMMIT, or a failed COMMIT: the next user must
            # not inherit the write lock or half-done writes.
            conn.rollback()
    except sqlite3.Error as exc:
        logger.warning("sqlite: dropping a connection that could not be reset: %s", exc)
        return False
    return True


# -- writers: one at a time per process, each polling SQLite's write lock briefly ----------
# While the file's write lock is taken, SQLite's own busy handler sleeps 1, 2, 5, 10 ... up
# to 100 ms between attempts: a writer that missed twice sleeps long while newer ones get
# in, so under load some replies waited seconds (py-spy at 32 concurrent messages: 60% of
# request threads' time in BEGIN IMMEDIATE). Instead, a process's writers queue in arrival
# order (Turns), only the first tries the file lock, and it retries every millisecond
# (BUSY_TIMEOUT_MS: SQLite sleeps 1 ms, tries again, then returns SQLITE_BUSY to our loop,
# which checks the deadline). Readers never wait here: WAL lets them read beside the writer.
BUSY_TIMEOUT_MS = 2
# The busy timeout a connection keeps between write transactions (reads, schema changes).
IDLE_BUSY_TIMEOUT_MS = 5000


class TurnTimeout(sqlite3.OperationalError):
    """The writers ahead of this one did not finish before the caller's deadline."""


class Turns:
    """A first-come, first-served lock whose wait ends at a deadline (not re-entrant)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._owner = 0
        self._waiting: deque[threading.Lock] = deque()

    @contextmanager
    def turn(self, deadline: Deadline) -> Iterator[None]:
        """Wait for the writers ahead, at most until the deadline; hold the turn inside."""
        self._acquire(deadline)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, deadline: Deadline) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._held and self._owner == me:
                raise sqlite3.ProgrammingError("a write transaction inside another one")
            if not self._held:
                self._held, self._owner = True, me
                return
            waiter = threading.Lock()
            waiter.acquire()
            self._waiting.append(waiter)
        handed = waiter.acquire(timeout=max(0.0, deadline.remaining()))
        if not handed:
            with self._lock:
                try:
                    self._waiting.remove(waiter)
                except ValueError:
                    handed = True  # released to us while we gave up: ours after all
                else:
                    raise TurnTimeout("writers ahead did not finish before the deadline")
        with self._lock:
            self._owner = me

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                self._owner = 0
                self._waiting.popleft().release()  # the turn passes on, still held
            else:
                self._held, self._owner = False, 0


# Switching a file to WAL needs it to itself for a moment. Two connections asking at once
# (gunicorn's workers opening a new data directory together) deadlock inside SQLite, which
# refuses one of them at once, without waiting in its busy handler: so it is asked again.
WAL_SECONDS = 5.0


def use_wal(conn: sqlite3.Connection, seconds: float = WAL_SECONDS) -> None:
    """PRAGMA journal_mode=WAL (nothing to do once the file is in WAL), retried while
    another connection is switching it, for `seconds` at most."""
    until = time.monotonic() + seconds
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            break
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= until:
                raise
            time.sleep(0.005)
    if str(mode).lower() not in ("wal", "memory"):
        # A file system without shared memory (some network mounts): SQLite keeps its
        # rollback journal, and readers then wait for every writer.
        logger.warning(
            "sqlite: %s stays in %s mode, not WAL: readers wait for writers", _name(conn), mode
        )


def _name(conn: sqlite3.Connection) -> str:
    """The main database file's name (for a log line: not its directory)."""
    try:
        return os.path.basename(conn.execute("PRAGMA database_list").fetchone()[2]) or "memory"
    except sqlite3.Error:
        return "a database"


def begin_immediate(conn: sqlite3.Connection, deadline: Deadline) -> None:
    """BEGIN IMMEDIATE, retried every millisecond while another process writes, until the
    deadline (then the last "database is locked" error is raised)."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY)
            busy = code & 0xFF == sqlite3.SQLITE_BUSY  # SQLITE_BUSY or an extended form
            if conn.in_transaction or not busy or deadline.remaining() <= 0:
                raise
            time.sleep(0)  # let other threads run between attempts


def end_write(conn: sqlite3.Connection) -> None:
    """After a write transaction: back to the patient busy timeout for reads (a connection
    this fails on is dropped by the pool's clean-up anyway)."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {IDLE_BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        logger.warning("sqlite: could not reset the busy timeout: %s", exc)
