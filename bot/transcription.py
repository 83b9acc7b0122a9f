"""The Transcriber protocol: what a voice question needs, nothing more (a leaf: the
Mistral adapter implements it, the use case uses it, neither imports the other)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.deadline import Deadline


class Transcriber(Protocol):
    """Turns a voice note into text in the language it was spoken in (never translated)."""

    name: str

    def transcribe(
        self, audio: bytes, content_type: str, names: Sequence[str], deadline: Deadline
    ) -> str:
        """The words heard in `audio`, within `deadline`; `names` (people the knowledge
        base knows) bias the spelling where the API takes them. Raises ModelFailed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
