"""Fakes of our history store protocols (bot/history/store.py)."""

from __future__ import annotations

from bot.errors import HistoryUnavailable


class DownHistory:
    """Every history operation fails, as when the database is unreachable."""

    backend = "down"

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise HistoryUnavailable("connection refused")

        return fail
