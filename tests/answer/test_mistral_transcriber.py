"""MistralTranscriber: Mistral's audio transcription API through the real SDK against the
local stand-in."""

from __future__ import annotations

import time

import pytest

from bot.answer.mistral import MistralTranscriber
from bot.answer.mistral import transcriber as mistral_transcriber
from bot.answer.mistral.transcriber import MAX_BIAS_ENTRIES, bias_entries
from bot.deadline import Deadline
from bot.errors import ModelFailed
from tests.support import API_KEY

OGG = b"OggS\x00\x02" + bytes(500) + b"\x01\x02voice"
NAMES = ["Amara Okafor", "Jonas Weber"]


@pytest.fixture
def transcriber(adapter) -> MistralTranscriber:
    return adapter(MistralTranscriber)


def test_the_audio_goes_up_as_a_file_with_the_names_and_no_language(stub, transcriber) -> None:
    stub.transcript = "  Qui a assisté à la réunion ?  "  # heard in French, kept in French
    text = transcriber.transcribe(OGG, "audio/ogg; codecs=opus", NAMES, Deadline(10))
    assert text == "Qui a assisté à la réunion ?"
    (request,) = stub.transcription_requests
    upload = request.files["file"]
    assert (upload.data, upload.content_type, upload.file_name) == (
        OGG,
        "audio/ogg",
        "voice-note.ogg",
    )
    assert request.form["model"] == ["voxtral-mini-latest"]
    assert request.form["context_bias"] == NAMES
    # The speaker's language is detected, never set, and nothing asks for a translation.
    assert not [name for name in request.form if "language" in name or "translat" in name]
    assert request.authorization == f"Bearer {API_KEY}"
    assert "sk-" not in repr(transcriber)


def test_the_configured_model_is_asked_and_no_names_send_no_bias(stub, adapter) -> None:
    small = adapter(MistralTranscriber, model="voxtral-small-latest")
    assert small.transcribe(OGG, "audio/mpeg", [], Deadline(10)).startswith("Stub")
    (request,) = stub.transcription_requests
    assert request.form["model"] == ["voxtral-small-latest"]
    assert "context_bias" not in request.form
    assert request.files["file"].file_name == "voice-note.mp3"


def test_names_become_distinct_trimmed_entries_at_most_the_apis_hundred() -> None:
    names = [" Amara  Okafor ", "Amara Okafor", "", "x" * 500, *[f"P{i}" for i in range(200)]]
    entries = bias_entries(names)
    assert entries[0] == "Amara Okafor" and entries[1] == "P0"
    assert len(entries) == MAX_BIAS_ENTRIES


def test_a_503_is_retried_within_the_deadline(stub, transcriber) -> None:
    stub.statuses = [503]
    stub.retry_after = 0.1
    stub.transcript = "heard"
    assert transcriber.transcribe(OGG, "audio/ogg", [], Deadline(10)) == "heard"
    assert len(stub.transcription_requests) == 2


def test_a_failing_api_fails_with_a_short_reason_inside_the_deadline(stub, transcriber) -> None:
    stub.statuses = [500] * 10
    started = time.monotonic()
    with pytest.raises(ModelFailed) as caught:
        transcriber.transcribe(OGG, "audio/ogg", [], Deadline(2))
    assert caught.value.reason == "http 500"
    assert time.monotonic() - started < 2
    # Retried only while another attempt still had MIN_TRANSCRIBE_SECONDS of the budget.
    assert 1 <= len(stub.transcription_requests) < 4


@pytest.mark.parametrize(
    "stall", [{"delay": 5.0}, {"trickle": "body"}], ids=["hanging", "trickled reply"]
)
def test_a_stalled_api_fails_at_the_deadline(stub, transcriber, stall) -> None:
    for name, value in stall.items():
        setattr(stub, name, value)
    started = time.monotonic()
    with pytest.raises(ModelFailed) as caught:
        transcriber.transcribe(OGG, "audio/ogg", [], Deadline(1.5))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 2.0


def test_too_little_time_left_makes_no_request(stub, transcriber) -> None:
    with pytest.raises(ModelFailed):
        transcriber.transcribe(
            OGG, "audio/ogg", [], Deadline(mistral_transcriber.MIN_TRANSCRIBE_SECONDS / 2)
        )
    assert stub.transcription_requests == []
