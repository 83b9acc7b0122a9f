"""A time budget created when a request arrives and passed down every call path."""

from __future__ import annotations

import time
from collections.abc import Callable


class DeadlineExceeded(TimeoutError):
    """Raised by `Deadline.check` when no time is left."""


class Deadline:
    """An absolute point in monotonic time; children may end earlier, never later."""

    __slots__ = ("_clock", "_end")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + max(0.0, seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        """True once the budget is spent."""
        return self._clock() >= self._end

    def check(self) -> None:
        """Raise `DeadlineExceeded` when the budget is spent."""
        if self.expired():
            raise DeadlineExceeded("deadline exceeded")

    def child(self, seconds: float | None = None, reserve: float = 0.0) -> Deadline:
        """A sub-budget of at most `seconds`, leaving `reserve` seconds to the caller."""
        budget = self.remaining() - reserve
        if seconds is not None:
            budget = min(budget, seconds)
        return Deadline(max(0.0, budget), self._clock)

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
