"""Tests that run on both history stores: a hand-moved clock, the `clock` and `store`
fixtures (a plugin: see tests/conftest.py), `open_store`, `db_rows`. A module may override
`clock` (e.g. to start on a Monday); `store` then uses that clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from bot.deadline import Deadline
from bot.history.sqlite import SqliteHistoryStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


BACKENDS = ["sqlite", "postgres"]


def open_store(request, path: str, clock: Callable[[], float]):
    """A store of the kind the test is parametrised with: "sqlite", or "postgres" on the
    real server of the test session."""
    if request.param == "postgres":
        from bot.history.postgres import PostgresHistoryStore

        return PostgresHistoryStore(request.getfixturevalue("pg_url"), 5.0, clock=clock)
    return SqliteHistoryStore(path, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path, clock):
    """A history store of each kind, on `clock`, reachable as `store.clock` too."""
    store = open_store(request, str(tmp_path / "history.sqlite3"), clock)
    store.clock = clock
    yield store
    store.close()


def budget() -> Deadline:
    return Deadline(5)


def db_rows(store, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows straight from a store's database, past its methods (`?` placeholders)."""
    if store.backend == "sqlite":
        with sqlite3.connect(store.path) as db:
            return db.execute(sql, params).fetchall()
    from tests.services.postgres import run_sql

    return run_sql(store._db.url, sql.replace("?", "%s"), params)
