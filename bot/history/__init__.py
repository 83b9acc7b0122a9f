"""Conversation history: pick the store the configuration asks for."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.errors import HistoryUnavailable
from bot.history.records import Delivery, ExchangeRecord
from bot.history.store import HistoryStore
from bot.settings import Settings

__all__ = ["Delivery", "ExchangeRecord", "HistoryStore", "open_history_store"]

logger = logging.getLogger(__name__)


def open_history_store(settings: Settings) -> HistoryStore:
    """PostgreSQL when DATABASE_URL is set (schema migrated now if reachable), else SQLite."""
    if settings.database_url:
        from bot.history.postgres import PostgresHistoryStore

        store = PostgresHistoryStore(
            settings.database_url, budget_seconds=settings.response_timeout_seconds
        )
        try:
            store.migrate()
        except HistoryUnavailable as exc:
            # Start anyway: the first request that reaches the database migrates it.
            logger.warning(
                "history: cannot prepare PostgreSQL at start-up (%s); answering without "
                "history until it is reachable",
                exc,
            )
        return store

    from bot.history.sqlite import SqliteHistoryStore

    return SqliteHistoryStore(str(Path(settings.data_dir) / "history.sqlite3"))
