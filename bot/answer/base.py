"""The Answerer protocol and its error."""

from __future__ import annotations

from typing import Protocol

from bot.deadline import Deadline
from bot.models import Answer, Passage, Turn


class AnswerFailed(Exception):
    """The model could not answer (timeout, HTTP error, bad response); callers fall back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # short and log-safe: "timeout", "http 429", "connection error"


class Answerer(Protocol):
    """Turns a question, its passages and the conversation so far into an Answer."""

    name: str

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """Answer within `deadline`; may raise AnswerFailed."""
        ...
