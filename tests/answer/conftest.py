"""Fixtures for the answer tests: the Mistral stand-in and answerers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.answer import FallbackAnswerer
from bot.answer.mistral import MistralAnswerer
from bot.models import Passage, Turn
from tests.fakes.mistral_server import MistralStub
from tests.support import API_KEY


@pytest.fixture
def stub() -> Iterator[MistralStub]:
    """A running stub on a free local port, stopped after the test."""
    with MistralStub() as server:
        yield server


@pytest.fixture
def mistral(stub: MistralStub) -> Iterator[MistralAnswerer]:
    """A MistralAnswerer talking to the stub through the real SDK."""
    answerer = MistralAnswerer(API_KEY, "mistral-small-latest", server_url=stub.url)
    yield answerer
    answerer.close()


@pytest.fixture
def adapter(stub: MistralStub) -> Iterator[Callable[..., Any]]:
    """Factory: a Mistral adapter class (OCR, transcription) built against the stub with
    these options; closed after the test."""
    made: list[Any] = []

    def build(cls: type, **options: Any) -> Any:
        made.append(cls(API_KEY, server_url=stub.url, **options))
        return made[-1]

    yield build
    for service in made:
        service.close()


@pytest.fixture
def fallback(mistral: MistralAnswerer) -> FallbackAnswerer:
    """Mistral with the extractive fallback, as build_answerer wires it."""
    return FallbackAnswerer(mistral)


@pytest.fixture
def passages() -> list[Passage]:
    """Two meeting notes, one with a transcript."""
    return [
        Passage(
            text=(
                "UNEA prep meeting, 4 March 2026.\n"
                "Attendees: Amina Diallo, Lars Berg, Sofia Reyes.\n"
                "Lars: The budget for the side event is 12,000 euros. "
                "We will ask the ministry to cover the venue.\n"
                "Sofia: The deadline for the draft resolution is 20 March."
            ),
            source="UNEA prep meeting (2026-03-04)",
            score=2.0,
        ),
        Passage(
            text=(
                "Comms sync. The newsletter goes out every second Tuesday. "
                "Amina owns the social media calendar."
            ),
            source="Comms sync (2026-02-18)",
            score=1.0,
        ),
    ]


@pytest.fixture
def turns() -> list[Turn]:
    """An earlier exchange of the same conversation."""
    return [
        Turn("user", "When is the UNEA prep meeting?"),
        Turn("assistant", "It was on 4 March 2026.\n\nSources: UNEA prep meeting (2026-03-04)"),
    ]
