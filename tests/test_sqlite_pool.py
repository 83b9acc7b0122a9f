"""The SQLite connection pool both embedded stores use: bounded, deadline-bounded, fork-safe."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import traceback
import warnings
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable, KnowledgeUnavailable
from bot.history.sqlite import SqliteHistoryStore
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.sqlite_pool import (
    BUSY_TIMEOUT_MS,
    PoolClosed,
    PoolTimeout,
    SqlitePool,
    Turns,
    TurnTimeout,
    use_wal,
)
from tests.support import run_threads


def wal(conn: sqlite3.Connection) -> None:
    use_wal(conn)  # as the stores do: four connections opened at once may all switch


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A database file holding table t with one row."""
    file = str(tmp_path / "pool.sqlite3")
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    return file


def is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.in_transaction  # noqa: B018 (raises on a closed connection, touches no file)
    except sqlite3.ProgrammingError:
        return True
    return False


def test_many_threads_share_at_most_size_connections(path: str) -> None:
    pool = SqlitePool(path, 4, wal)
    seen: set[sqlite3.Connection] = set()
    peak, errors, lock = [0], [], threading.Lock()
    start = threading.Barrier(32)

    def work() -> None:
        start.wait()
        for _ in range(20):
            try:
                with pool.connection(Deadline(10)) as conn:
                    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
                    with lock:
                        seen.add(conn)
                        peak[0] = max(peak[0], pool.opened)
                    time.sleep(0.001)
            except Exception as exc:  # collected: an assert in a thread would be lost
                errors.append(exc)

    run_threads(work, 32)
    assert errors == []
    assert len(seen) == 4 and peak[0] == 4 and pool.opened == 4
    pool.close()


def test_idle_connections_are_reused_most_recent_first(path: str) -> None:
    setups: list[sqlite3.Connection] = []
    pool = SqlitePool(path, 4, setups.append)
    for _ in range(3):  # one thread, one operation at a time: one connection
        with pool.connection(Deadline(1)):
            pass
    assert len(setups) == 1 and pool.opened == 1
    first, second = pool.acquire(Deadline(1)), pool.acquire(Deadline(1))
    pool.release(first)
    pool.release(second)
    assert pool.acquire(Deadline(1)) is second
    assert setups == [first, second]  # set up once each, when opened
    pool.close()


def test_waiting_for_a_connection_ends_at_the_deadline(path: str) -> None:
    pool = SqlitePool(path, 1, wal)
    held = pool.acquire(Deadline(1))
    started = time.monotonic()
    with pytest.raises(PoolTimeout):
        pool.acquire(Deadline(0.2))
    assert 0.15 < time.monotonic() - started < 2
    with pytest.raises(PoolTimeout):
        pool.acquire(Deadline(0))

    # A connection returned before the deadline goes to the waiter.
    got: list[sqlite3.Connection] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(Deadline(10))))
    waiter.start()
    time.sleep(0.1)
    pool.release(held)
    waiter.join(timeout=5)
    assert got == [held]
    pool.close()


def test_a_failed_set_up_frees_its_slot(path: str) -> None:
    opened: list[sqlite3.Connection] = []

    def set_up(conn: sqlite3.Connection) -> None:
        opened.append(conn)
        if len(opened) == 1:
            raise sqlite3.OperationalError("database is locked")

    pool = SqlitePool(path, 1, set_up)
    with pytest.raises(sqlite3.OperationalError):
        pool.acquire(Deadline(1))
    assert is_closed(opened[0]) and pool.opened == 0
    with pool.connection(Deadline(1)) as conn:
        assert conn is opened[1]
    pool.close()


def test_close_closes_idle_connections_now_and_busy_ones_when_returned(path: str) -> None:
    pool = SqlitePool(path, 3, wal)
    idle, busy = pool.acquire(Deadline(1)), pool.acquire(Deadline(1))
    pool.release(idle)
    pool.close()
    assert is_closed(idle) and not is_closed(busy)
    assert busy.execute("SELECT count(*) FROM t").fetchone() == (1,)  # its operation finishes
    pool.release(busy)
    assert is_closed(busy) and pool.opened == 0
    with pytest.raises(PoolClosed):
        pool.acquire(Deadline(1))


def test_close_wakes_waiters(path: str) -> None:
    pool = SqlitePool(path, 1, wal)
    held = pool.acquire(Deadline(1))
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire(Deadline(10))
        except sqlite3.Error as exc:
            failures.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    pool.close()
    waiter.join(timeout=5)
    assert [type(f) for f in failures] == [PoolClosed] and time.monotonic() - started < 1
    pool.release(held)


def test_a_connection_returned_mid_transaction_is_rolled_back(path: str) -> None:
    pool = SqlitePool(path, 1, wal)
    with pytest.raises(RuntimeError):
        with pool.connection(Deadline(1)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (2)")
            conn.set_progress_handler(lambda: 1, 1)  # would abort every later statement
            raise RuntimeError("the operation failed before COMMIT")
    assert not conn.in_transaction
    # The write lock is free for another process's connection, and the row is gone.
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    with pool.connection(Deadline(1)) as again:
        assert again is conn
        assert again.execute("SELECT count(*) FROM t").fetchone() == (1,)
    pool.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_neither_uses_nor_closes_the_parents_connections(
    path: str, tmp_path: Path
) -> None:
    pool = SqlitePool(path, 4, wal)
    held, idle = pool.acquire(Deadline(1)), pool.acquire(Deadline(1))
    pool.release(idle)
    report = tmp_path / "child.txt"
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking while threads run (another test's servers);
        # the child below uses no lock those threads could hold, and leaves with _exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 2
        try:
            with pool.connection(Deadline(5)) as conn:
                assert conn is not held and conn is not idle
                assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
                conn.execute("INSERT INTO t VALUES (2)")
            pool.release(held)  # the parent's: ignored, not reset, not pooled
            assert pool.opened == 1
            pool.close()
            assert not is_closed(held)
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report.read_text() if report.exists() else ""
    # Idle connections were closed before the fork; the one in use works on, seeing the
    # child's write, and the parent's WAL is still there.
    assert is_closed(idle) and pool.opened == 1
    assert held.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert Path(path + "-wal").exists()
    pool.release(held)
    pool.close()


def test_each_store_turns_a_pool_timeout_into_its_own_error(tmp_path: Path) -> None:
    history = SqliteHistoryStore(str(tmp_path / "h.sqlite3"), pool_size=1)
    knowledge = SqliteKnowledgeStore(str(tmp_path / "k.sqlite3"), pool_size=1)
    for store in (history, knowledge):
        held = store._pool.acquire(Deadline(1))
        try:
            if store is history:
                with pytest.raises(HistoryUnavailable, match="busy"):
                    history.recent("c", 10, Deadline(0.05))
            else:
                with pytest.raises(KnowledgeUnavailable, match="timeout"):
                    knowledge.search("UNEA", 5, Deadline(0.05))
        finally:
            store._pool.release(held)
    history.close()
    history.ping()  # history reopens after close, as before the pool
    history.close()
    knowledge.close()
    with pytest.raises(KnowledgeUnavailable):
        knowledge.ping()


def test_writers_take_turns_in_arrival_order() -> None:
    turns, order = Turns(), []
    first = turns.turn(Deadline(5))
    first.__enter__()

    def writer(name: str) -> None:
        with turns.turn(Deadline(5)):
            order.append(name)

    threads = []
    for n, name in enumerate("abcd"):
        threads.append(threading.Thread(target=writer, args=(name,)))
        threads[-1].start()
        while len(turns._waiting) <= n:  # queued before the next one arrives
            time.sleep(0.001)
    first.__exit__(None, None, None)
    for thread in threads:
        thread.join()
    assert order == list("abcd")


def test_a_turn_not_reached_by_the_deadline_leaves_the_queue() -> None:
    turns, failed = Turns(), []
    with turns.turn(Deadline(5)):

        def late() -> None:
            try:
                with turns.turn(Deadline(0.05)):
                    pass
            except TurnTimeout:
                failed.append(True)

        run_threads(late, 1)
        assert failed == [True] and not turns._waiting
        with pytest.raises(sqlite3.ProgrammingError, match="inside another"):
            with turns.turn(Deadline(1)):
                pass
    with turns.turn(Deadline(1)):  # free again
        pass


def test_a_writer_waits_out_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    # SQLite's busy handler gives up after BUSY_TIMEOUT_MS; the loop tries again until the
    # deadline, so a writer holding the lock longer than that only delays the claim.
    store = SqliteHistoryStore(str(tmp_path / "h.sqlite3"))
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    claimed = []
    thread = threading.Thread(target=lambda: claimed.append(store.claim("SM1", "a", Deadline(5))))
    thread.start()
    time.sleep(10 * BUSY_TIMEOUT_MS / 1000)
    other.execute("COMMIT")
    thread.join()
    assert [c.state for c in claimed] == ["new"]
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(HistoryUnavailable, match="locked"):
        store.claim("SM2", "a", Deadline(0.05))
    other.execute("ROLLBACK")
    other.close()
    store.close()


@pytest.mark.parametrize("store", [SqliteKnowledgeStore, SqliteHistoryStore])
def test_workers_opening_a_new_data_directory_at_once_all_start(tmp_path: Path, store) -> None:
    # gunicorn's workers open the same new files together on a fresh disk. Switching a file
    # to WAL needs it to themselves, and two connections asking at once make SQLite refuse
    # one at once ("database is locked"), without waiting: that worker would not boot.
    # Connections in threads race as processes do; 20 fresh files, 8 openers each.
    errors: list[BaseException] = []
    for n in range(20):
        path = str(tmp_path / f"{n}.sqlite3")
        start = threading.Barrier(8)

        def open_store(path: str = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                store(path).close()
            except Exception as exc:  # collected: an assert in a thread would be lost
                errors.append(exc)

        run_threads(open_store, 8)
    assert errors == []


def test_a_file_that_cannot_use_wal_is_named_in_a_warning(tmp_path: Path, caplog) -> None:
    # Without shared memory (as on some network mounts) SQLite keeps its rollback journal
    # and says so only in the pragma's answer; readers would then wait for every writer.
    conn = sqlite3.connect(f"file:{tmp_path / 'mounted.sqlite3'}?vfs=unix-none", uri=True)
    use_wal(conn)
    conn.close()
    assert "sqlite: mounted.sqlite3 stays in delete mode, not WAL" in caplog.text
