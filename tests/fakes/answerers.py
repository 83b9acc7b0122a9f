"""A fake of our Answerer protocol (bot/answer/base.py), configured per test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.base import Answerer
from bot.deadline import Deadline
from bot.models import Answer, Passage, Turn
from tests.fakes.clock import Clock


@dataclass(frozen=True)
class Call:
    """What one `answer` call was given (the deadline as the seconds it had left)."""

    question: str
    passages: list[Passage]
    turns: list[Turn]
    seconds_left: float


class FakeAnswerer:
    """Records every call (`calls`: the questions; `received`: all each call was given),
    then answers in one of these ways:

    - by default "answer to QUESTION", citing the first passage;
    - `text`: that text, or `text(question, n)` for the n-th call;
    - `wraps`: what that answerer says (a spy, e.g. on `ExtractiveAnswerer()`, the app's
      default without a model key);
    - `error`: raises it, as a broken answerer would.

    `plan` (backend, fallback reason, milliseconds) labels each answer of its own and, with
    `clock`, makes it take that long."""

    def __init__(
        self,
        text: str | Callable[[str, int], str] | None = None,
        *,
        wraps: Answerer | None = None,
        error: Exception | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.text, self.wraps, self.error, self.clock = text, wraps, error, clock
        self.name = wraps.name if wraps is not None else "fake"
        self.plan: tuple[str, str, float] = ("fake", "", 0.0)
        self.calls: list[str] = []
        self.received: list[Call] = []

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        self.calls.append(question)
        self.received.append(Call(question, passages, turns, deadline.remaining()))
        if self.error is not None:
            raise self.error
        if self.wraps is not None:
            return self.wraps.answer(question, passages, turns, deadline)
        backend, reason, milliseconds = self.plan
        if self.clock is not None:
            self.clock.now += milliseconds / 1000
        if self.text is None:
            text = f"answer to {question}"
        elif isinstance(self.text, str):
            text = self.text
        else:
            text = self.text(question, len(self.calls))
        sources = (passages[0].source,) if passages else ()
        return Answer(text, sources, backend, reason)
