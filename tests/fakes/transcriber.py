"""A fake of our Transcriber protocol (bot/transcription.py), configured per test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.deadline import Deadline
from bot.errors import ModelFailed
from tests.fakes.clock import Clock


@dataclass(frozen=True)
class Heard:
    """What one `transcribe` call was given (the deadline as the seconds it had left)."""

    audio: bytes
    content_type: str
    names: list[str]
    seconds_left: float


class FakeTranscriber:
    """Records every call in `calls`, then hears `text`; or raises `error`. With `clock`,
    each call takes `seconds`; a `hang` takes all the time its deadline gives and then
    fails with "timeout", as a transcription API that never answers would."""

    name = "fake-transcriber"

    def __init__(
        self,
        text: str = "Who attended the UNEA meeting?",
        *,
        error: Exception | None = None,
        clock: Clock | None = None,
        seconds: float = 0.0,
        hang: bool = False,
    ) -> None:
        self.text, self.error, self.clock = text, error, clock
        self.seconds, self.hang = seconds, hang
        self.calls: list[Heard] = []
        self.closed = False

    def transcribe(
        self, audio: bytes, content_type: str, names: Sequence[str], deadline: Deadline
    ) -> str:
        left = deadline.remaining()
        self.calls.append(Heard(audio, content_type, list(names), left))
        if self.clock is not None:
            self.clock.now += left if self.hang else self.seconds
        if self.hang:
            raise ModelFailed("timeout")
        if self.error is not None:
            raise self.error
        return self.text

    def close(self) -> None:
        self.closed = True
