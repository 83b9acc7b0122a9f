"""Voice questions: a voice note is downloaded, transcribed in the language it was spoken
in, and answered as if its words had been typed, the reply headed by what was heard. Each
failure (no transcriber, download, transcription, no words) is one short reply, inside the
deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.chat.media import Ask, MediaSource
from bot.chat.mention import find_mention
from bot.deadline import Deadline
from bot.errors import MediaUnavailable, ModelFailed
from bot.media import MediaFile
from bot.models import InboundMessage, Reply
from bot.settings import Settings
from bot.text import clean_text
from bot.texts import (
    HELP_TEXT,
    VOICE_EMPTY,
    VOICE_FAILED,
    VOICE_HEARD,
    VOICE_OFF,
    VOICE_UNAVAILABLE,
)
from bot.transcription import Transcriber

logger = logging.getLogger(__name__)

# One reply's deadline (whatsapp.response_timeout_seconds, 12 s by default) holds three steps
# in turn: the download, the transcription and the answer.
# - The download gets at most a quarter of what remains (3 s of 12). A WhatsApp voice note is
#   Opus at a few KB per second of speech: a minute of it is well under a megabyte.
DOWNLOAD_SHARE = 0.25
# - The answer (retrieval and one model call, which falls back to excerpts in whatever time
#   is left) keeps back ANSWER_SHARE of what remains after the download, at most
#   ANSWER_RESERVE_SECONDS: 4 s of the ~11.7 s a quick download leaves. On a short deadline
#   the share keeps the split in proportion instead of leaving the transcription nothing.
ANSWER_SHARE = 0.35
ANSWER_RESERVE_SECONDS = 4.0
# - The transcription gets the rest (~7.7 s of 12): a slow or failing one ends by then, and
#   its short reply is sent with the whole reserve still in hand.


# Reading the people's names (one small query) may take this much of the budget at most.
NAMES_SECONDS = 0.5


def no_names(msg: InboundMessage, deadline: Deadline) -> Sequence[str]:
    """No context bias."""
    return ()


@dataclass
class VoiceQuestions:
    """The MediaInbox route for audio: (message, deadline) -> Reply."""

    settings: Settings
    media: MediaSource
    transcriber: Transcriber | None  # None without a model key: voice is off
    ask: Ask  # the typed path: history, cache, retrieval, answerer (ConversationHandler.ask)
    # Names whose spelling the transcription should get right (the app factory reads the
    # people of the documents the sender may read with KnowledgeStore.people), read within
    # the deadline given.
    names: Callable[[InboundMessage, Deadline], Sequence[str]] = no_names

    def __call__(self, msg: InboundMessage, deadline: Deadline) -> Reply:
        """The answer to a voice note, headed by what was heard; or one short reply."""
        if msg.is_group and not self.settings.enable_group_chat:
            return Reply(kind="ignored")
        if self.transcriber is None:
            logger.info("voice note not transcribed: no transcriber (no model key)")
            return self._cannot(msg, VOICE_OFF)
        started = time.monotonic()
        note = self._download(msg, deadline)
        if note is None:
            return self._cannot(msg, VOICE_UNAVAILABLE)
        fetched = time.monotonic()
        transcript = self._transcribe(self.transcriber, msg, note, deadline)
        if transcript is None:
            return self._cannot(msg, VOICE_FAILED)
        logger.info(
            "voice note: %d bytes fetched in %.0f ms, %d characters heard in %.0f ms",
            len(note.data),
            (fetched - started) * 1000,
            len(transcript),
            (time.monotonic() - fetched) * 1000,
        )
        if not transcript:
            return self._cannot(msg, VOICE_EMPTY)
        return self._answer(msg, transcript, deadline)

    def _download(self, msg: InboundMessage, deadline: Deadline) -> MediaFile | None:
        """The voice note's checked bytes, within its share of the deadline; None if not."""
        budget = deadline.child(seconds=deadline.remaining() * DOWNLOAD_SHARE)
        try:
            return self.media.fetch(msg.media_urls[0], msg.media_types[0], budget)
        except MediaUnavailable as exc:
            logger.warning("voice note not downloaded: %s", exc.reason)
            return None

    def _transcribe(
        self, transcriber: Transcriber, msg: InboundMessage, note: MediaFile, deadline: Deadline
    ) -> str | None:
        """The words heard (cleaned, possibly ""), leaving the answer its reserve; None when
        the transcription failed or ran out of time."""
        reserve = min(ANSWER_RESERVE_SECONDS, deadline.remaining() * ANSWER_SHARE)
        try:
            names = list(self.names(msg, deadline.child(NAMES_SECONDS)))
        except Exception as exc:  # a bias list is a nicety: never worth the answer
            logger.warning("names for the transcription unavailable (%s)", type(exc).__name__)
            names = []
        try:
            heard = transcriber.transcribe(
                note.data, note.content_type, names, deadline.child(reserve=reserve)
            )
        except ModelFailed as exc:
            logger.warning("voice note not transcribed: %s", exc.reason)
            return None
        except Exception as exc:  # a bug in an adapter still gets the user a reply
            # Only the type: the message could quote what was said.
            logger.error("transcriber %s raised %s", transcriber.name, type(exc).__name__)
            return None
        return clean_text(heard)

    def _answer(self, msg: InboundMessage, transcript: str, deadline: Deadline) -> Reply:
        """The transcript answered as typed (a trigger word needed in a group chat)."""
        # Spoken, "@agent" is no word: in a group, a trigger a voice can say (the default
        # config's "hey agent") addresses the bot, as a typed mention does.
        mentioned, question = find_mention(transcript, self.settings.trigger_words)
        if msg.is_group and not mentioned:
            logger.info("voice note in a group without a trigger word: ignored")
            return Reply(kind="ignored")
        limit = self.settings.max_question_chars
        # Quoted as heard, cut like the question the answer reads (ask adds the note).
        shown = transcript if len(transcript) <= limit else transcript[:limit].rstrip() + "…"
        heading = VOICE_HEARD.format(transcript=shown)
        if not question:  # only the trigger word was said
            help_text = HELP_TEXT.format(trigger=self.settings.trigger_words[0])
            return Reply(f"{heading}\n\n{help_text}", kind="command")
        reply = self.ask(msg, question, deadline)
        text = f"{heading}\n\n{reply.text}" if reply.text else heading
        return Reply(text, kind=reply.kind, sources=reply.sources, extra=reply.extra)

    def _cannot(self, msg: InboundMessage, text: str) -> Reply:
        """One short reply saying why a voice note is not answered. In a group, silence: the
        bot cannot tell whether the note was meant for it, and says nothing unasked."""
        if msg.is_group:
            return Reply(kind="ignored")
        return Reply(text.format(trigger=self.settings.trigger_words[0]), kind="voice")
