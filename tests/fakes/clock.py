"""A clock the test controls: for history stores, the use case's timer and deadlines."""

from __future__ import annotations


class Clock:
    """Reads `now`: moved by hand (`clock.now += 60`), or by `step` seconds after each read
    (a clock that ticks as the code under test reads it)."""

    def __init__(self, now: float = 1_000_000.0, step: float = 0.0) -> None:
        self.now, self.step = now, step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now
