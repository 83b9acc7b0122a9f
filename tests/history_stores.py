"""Helpers for tests that run on both history stores: a hand-moved clock, `open_store`,
`db_rows`. Modules define their `clock` and `store` fixtures with these."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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


def budget() -> Deadline:
    return Deadline(5)


def db_rows(store, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows straight from a store's database, past its methods (`?` placeholders)."""
    if store.backend == "sqlite":
        with sqlite3.connect(store.path) as db:
            return db.execute(sql, params).fetchall()
    from tests.services.postgres import run_sql

    return run_sql(store._url, sql.replace("?", "%s"), params)
