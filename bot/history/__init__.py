"""Conversation history: pick the store the configuration asks for."""

from __future__ import annotations

from pathlib import Path

from bot.history.store import Delivery, HistoryStore, HistoryUnavailable
from bot.settings import Settings

__all__ = ["Delivery", "HistoryStore", "HistoryUnavailable", "open_history_store"]


def open_history_store(settings: Settings) -> HistoryStore:
    """SQLite under DATA_DIR (PostgreSQL arrives with DATABASE_URL support)."""
    from bot.history.sqlite import SqliteHistoryStore

    return SqliteHistoryStore(str(Path(settings.data_dir) / "history.sqlite3"))
