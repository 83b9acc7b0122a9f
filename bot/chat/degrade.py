"""How the use case degrades when history is down: one place catches HistoryUnavailable."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from bot.errors import HistoryUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")


def without_history(default: T, operation: Callable[[], T]) -> T:
    """Run a history operation; on HistoryUnavailable log one line and use `default`."""
    try:
        return operation()
    except HistoryUnavailable as exc:
        logger.warning("history unavailable: %s", exc)
        return default
