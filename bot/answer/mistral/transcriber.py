"""Voxtral transcription of voice notes (the Transcriber protocol), deadline-bound."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bot.answer.mistral.client import OneModelService
from bot.deadline import Deadline
from bot.errors import ModelFailed

logger = logging.getLogger(__name__)

TRANSCRIPTION_MODEL = "voxtral-mini-latest"
# Below this a request cannot upload a voice note and have it transcribed: not worth paying
# for. A retry (429, 5xx) is made only while the budget still holds this much.
MIN_TRANSCRIBE_SECONDS = 1.0
# The API takes up to 100 context-bias entries (names or phrases).
MAX_BIAS_ENTRIES = 100
MAX_BIAS_CHARS = 100  # a longer "name" is not a name
# The file name the upload carries, by media type: the API reads the format from the bytes,
# an extension that agrees with them costs nothing.
EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/amr": "amr",
    "audio/aac": "aac",
}


def bias_entries(names: Sequence[str]) -> list[str]:
    """The names as context-bias entries: stripped, distinct, short, at most the API's 100."""
    entries: dict[str, None] = {}
    for name in names:
        entry = " ".join(str(name).split())
        if entry and len(entry) <= MAX_BIAS_CHARS:
            entries.setdefault(entry, None)
        if len(entries) == MAX_BIAS_ENTRIES:
            break
    return list(entries)


class MistralTranscriber(OneModelService):
    """The words of a voice note by Mistral's transcription API, one request per note."""

    default_model = TRANSCRIPTION_MODEL
    default_pool_size = 8

    def transcribe(
        self, audio: bytes, content_type: str, names: Sequence[str], deadline: Deadline
    ) -> str:
        """What was said, in the language it was said in; raises ModelFailed with a short
        reason ("timeout", "http 500", "invalid response")."""
        media_type = content_type.split(";", 1)[0].strip().lower()
        upload = {
            "file_name": f"voice-note.{EXTENSIONS.get(media_type, 'ogg')}",
            "content": audio,
            "content_type": media_type or "application/octet-stream",
        }
        bias = bias_entries(names)
        # No `language`: the API detects the speaker's and transcribes in it. Nothing here
        # asks for a translation (the endpoint has no such option; never add one).
        response, _ = self._client.call(
            lambda sdk, timeout_ms: sdk.audio.transcriptions.complete(
                model=self.model,
                file=upload,
                context_bias=bias or None,
                timeout_ms=timeout_ms,
                retries=None,
            ),
            deadline,
            what="transcription",
            min_seconds=MIN_TRANSCRIBE_SECONDS,
        )
        return self._text(response)

    def _text(self, response: Any) -> str:
        """The transcript, whitespace-trimmed ("" for a note without words)."""
        text = getattr(response, "text", None)
        if not isinstance(text, str):  # not the SDK's model
            logger.warning("mistral transcription: unexpected response shape")
            raise ModelFailed("invalid response")
        return text.strip()
