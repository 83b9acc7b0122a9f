"""The Answerer protocol (its error, AnswerFailed, is bot.errors.ModelFailed)."""

from __future__ import annotations

from typing import Protocol

from bot.deadline import Deadline
from bot.models import Answer, Passage, Turn


class Answerer(Protocol):
    """Turns a question, its passages and the conversation so far into an Answer."""

    name: str

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """Answer within `deadline`; may raise AnswerFailed."""
        ...
