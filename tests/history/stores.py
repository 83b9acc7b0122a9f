"""Fixtures for tests that run on both history stores (a plugin: see tests/conftest.py):
`clock`, `store` and `backend`. A module may override `clock` (e.g. to start on a Monday);
`store` then uses that clock. Helpers such as `db_rows` are in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.history.sqlite import SqliteHistoryStore
from tests.fakes.clock import Clock
from tests.support import BACKENDS


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


@pytest.fixture(params=BACKENDS)
def backend(request) -> dict:
    """Settings that put an app's history in SQLite (the data dir) or in PostgreSQL."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("pg_url")}
    return {}
