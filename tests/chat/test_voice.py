"""Voice questions in the use case, with small in-process fakes of our own protocols: what
was heard heads the answer, the deadline is shared out, and each failure is one reply."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.chat import voice
from bot.chat.conversation import FINISH_RESERVE_SECONDS, ConversationHandler
from bot.chat.media import MediaInbox
from bot.chat.voice import VoiceQuestions
from bot.deadline import Deadline
from bot.errors import MediaUnavailable, ModelFailed
from bot.history.sqlite import SqliteHistoryStore
from bot.media import MediaFile
from bot.metrics import Metrics
from bot.models import InboundMessage
from bot.settings import Settings
from bot.texts import (
    TRUNCATED_NOTE,
    VOICE_EMPTY,
    VOICE_FAILED,
    VOICE_OFF,
    VOICE_UNAVAILABLE,
)
from tests.fakes.answerers import FakeAnswerer
from tests.fakes.clock import Clock
from tests.fakes.knowledge import FakeKnowledge
from tests.fakes.transcriber import FakeTranscriber
from tests.support import ALICE

OGG = b"OggS\x00\x02" + bytes(300)
URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
HEARD = "Who attended the UNEA meeting?"


class Downloads:
    """A fake MediaSource: records each fetch (and the seconds its deadline had), then
    returns the voice note, or raises `error`; with `clock`, takes `seconds`."""

    def __init__(
        self,
        error: MediaUnavailable | None = None,
        clock: Clock | None = None,
        seconds: float = 0.0,
    ) -> None:
        self.error, self.clock, self.seconds = error, clock, seconds
        self.fetched: list[tuple[str, str, float]] = []

    def fetch(self, url: str, content_type: str, deadline: Deadline) -> MediaFile:
        self.fetched.append((url, content_type, deadline.remaining()))
        if self.clock is not None:
            self.clock.now += self.seconds
        if self.error is not None:
            raise self.error
        return MediaFile("audio/ogg", "audio", OGG)


@pytest.fixture
def history(tmp_path) -> Iterator[SqliteHistoryStore]:
    store = SqliteHistoryStore(str(tmp_path / "h.sqlite3"))
    yield store
    store.close()


class VoiceBot:
    """A ConversationHandler whose media inbox routes audio to VoiceQuestions."""

    def __init__(
        self,
        history,
        transcriber: FakeTranscriber | None,
        downloads: Downloads | None = None,
        names=voice.no_names,
        **settings,
    ) -> None:
        self.settings = Settings(**settings)
        self.knowledge, self.answerer = FakeKnowledge(), FakeAnswerer()
        self.downloads = downloads or Downloads()
        self.transcriber = transcriber
        route = VoiceQuestions(
            self.settings,
            self.downloads,
            transcriber,
            ask=lambda msg, question, deadline: self.handler.ask(msg, question, deadline),
            names=names,
        )
        self.handler = ConversationHandler(
            self.settings,
            history,
            self.knowledge,
            self.answerer,
            Metrics(),
            media=MediaInbox(self.settings.trigger_words[0], voice=route),
        )

    def send(self, deadline: Deadline | None = None, sid: str = "SM1", **extra):
        msg = InboundMessage(
            sid,
            ALICE,
            num_media=1,
            media_types=("audio/ogg",),
            media_urls=(URL,),
            **extra,
        )
        return self.handler.handle(msg, deadline or Deadline(5))


def test_a_voice_note_is_answered_as_typed_headed_by_what_was_heard(history) -> None:
    transcriber = FakeTranscriber(HEARD)
    bot = VoiceBot(history, transcriber)
    reply = bot.send()
    assert reply.text == f'🎤 "{HEARD}"\n\nanswer to {HEARD}'
    assert (reply.kind, reply.sources) == ("answer", ("UNEA prep (2026-03-04)",))
    assert bot.downloads.fetched[0][:2] == (URL, "audio/ogg")
    (heard,) = transcriber.calls
    assert (heard.audio, heard.content_type, heard.names) == (OGG, "audio/ogg", [])
    assert bot.knowledge.queries == [HEARD] and bot.answerer.calls == [HEARD]
    # Stored as a typed question would be: a follow-up sees it as the last turn.
    turns = history.recent(ALICE, 10, Deadline(5))
    assert [t.role for t in turns] == ["user", "assistant"] and turns[0].text == HEARD


def test_the_deadline_is_shared_out_between_download_transcription_and_answer(
    history,
) -> None:
    clock = Clock()
    downloads = Downloads(clock=clock, seconds=0.5)
    transcriber = FakeTranscriber(HEARD, clock=clock, seconds=2.0)
    bot = VoiceBot(history, transcriber, downloads)
    bot.send(Deadline(12, clock))
    # 12 s: the download may take a quarter (3 s); it took 0.5, so 11.5 s are left, of which
    # the answer keeps 4 s; the transcription may take the other 7.5 and took 2.
    assert downloads.fetched[0][2] == pytest.approx(12 * voice.DOWNLOAD_SHARE)
    assert transcriber.calls[0].seconds_left == pytest.approx(11.5 - 4.0)
    assert bot.answerer.received[0].seconds_left == pytest.approx(9.5 - FINISH_RESERVE_SECONDS)


def test_on_a_short_deadline_the_split_stays_in_proportion(history) -> None:
    clock = Clock()
    downloads = Downloads(clock=clock)
    transcriber = FakeTranscriber(HEARD, clock=clock)
    bot = VoiceBot(history, transcriber, downloads)
    bot.send(Deadline(3, clock))
    assert downloads.fetched[0][2] == pytest.approx(0.75)
    assert transcriber.calls[0].seconds_left == pytest.approx(3 * (1 - voice.ANSWER_SHARE))


def test_a_transcription_that_hangs_leaves_its_reply_the_answer_reserve(history) -> None:
    clock = Clock()
    bot = VoiceBot(history, FakeTranscriber(clock=clock, hang=True), Downloads(clock=clock))
    deadline = Deadline(12, clock)
    reply = bot.send(deadline)
    assert reply.text == VOICE_FAILED.format(trigger="@agent")
    assert deadline.remaining() == pytest.approx(voice.ANSWER_RESERVE_SECONDS)
    assert bot.answerer.calls == []


@pytest.mark.parametrize(
    ("transcriber", "downloads", "text", "downloaded", "transcribed"),
    [
        (None, Downloads(), VOICE_OFF, 0, 0),
        (FakeTranscriber(), Downloads(MediaUnavailable("not found")), VOICE_UNAVAILABLE, 1, 0),
        (FakeTranscriber(error=ModelFailed("http 500")), Downloads(), VOICE_FAILED, 1, 1),
        (FakeTranscriber(error=RuntimeError("bug")), Downloads(), VOICE_FAILED, 1, 1),
        (FakeTranscriber(""), Downloads(), VOICE_EMPTY, 1, 1),
        (FakeTranscriber(" \u200b\n "), Downloads(), VOICE_EMPTY, 1, 1),
    ],
    ids=["no-key", "download-failed", "http-500", "adapter-bug", "silence", "invisible"],
)
def test_each_failure_is_one_short_reply_and_no_answer(
    history, transcriber, downloads, text, downloaded, transcribed
) -> None:
    bot = VoiceBot(history, transcriber, downloads)
    reply = bot.send()
    assert (reply.text, reply.kind) == (text.format(trigger="@agent"), "voice")
    assert len(downloads.fetched) == downloaded
    assert len(transcriber.calls if transcriber else []) == transcribed
    assert bot.knowledge.queries == [] and bot.answerer.calls == []


def test_a_trigger_word_said_in_a_chat_with_the_bot_is_not_part_of_the_question(
    history,
) -> None:
    bot = VoiceBot(
        history, FakeTranscriber("Hey agent, who attended?"), trigger_words=("@agent", "hey agent")
    )
    assert bot.send().text == '🎤 "Hey agent, who attended?"\n\nanswer to who attended?'


def test_only_the_trigger_word_gets_the_help(history) -> None:
    bot = VoiceBot(history, FakeTranscriber("Hey agent."), trigger_words=("@agent", "hey agent"))
    reply = bot.send()
    assert reply.text.startswith('🎤 "Hey agent."\n\n*Hi!') and reply.kind == "command"
    assert bot.answerer.calls == []


def test_a_long_transcript_is_cut_like_a_typed_question(history) -> None:
    words = "budget " * 30  # 210 characters
    bot = VoiceBot(history, FakeTranscriber(words), max_question_chars=50)
    reply = bot.send()
    question = words.strip()[:50]
    assert bot.answerer.calls == [question]
    heading, note, _answer = reply.text.split("\n\n")
    assert heading == f'🎤 "{question.rstrip()}…"'
    assert note == TRUNCATED_NOTE.format(n=50)


@pytest.mark.parametrize(
    ("enable_group_chat", "heard", "answered", "transcribed"),
    [
        (False, f"Hey agent, {HEARD}", False, 0),  # the bot is not in groups: nothing done
        (True, HEARD, False, 1),  # not addressed: like a typed message without a trigger
        (True, f"Hey agent, {HEARD}", True, 1),
    ],
    ids=["groups-off", "no-trigger", "trigger"],
)
def test_in_a_group_a_voice_note_needs_a_trigger_word(
    history, enable_group_chat, heard, answered, transcribed
) -> None:
    transcriber = FakeTranscriber(heard)
    bot = VoiceBot(
        history,
        transcriber,
        enable_group_chat=enable_group_chat,
        trigger_words=("@agent", "hey agent"),
    )
    reply = bot.send(is_group=True, group_id="CH1")
    assert len(transcriber.calls) == transcribed
    if answered:
        assert reply.text == f'🎤 "{heard}"\n\nanswer to {HEARD}'
    else:
        assert (reply.text, reply.kind) == ("", "ignored")
        assert bot.answerer.calls == []


def test_in_a_group_a_failure_is_silent(history) -> None:
    bot = VoiceBot(history, FakeTranscriber(error=ModelFailed("timeout")), enable_group_chat=True)
    reply = bot.send(is_group=True, group_id="CH1")
    assert (reply.text, reply.kind) == ("", "ignored")


def test_the_names_bias_the_transcription_and_a_failing_list_does_not_stop_it(
    history,
) -> None:
    transcriber = FakeTranscriber(HEARD)
    VoiceBot(
        history, transcriber, names=lambda msg, deadline: ["Amara Okafor", "Jonas Weber"]
    ).send()

    def broken(msg, deadline) -> list[str]:
        raise OSError("store down")

    bot = VoiceBot(history, transcriber, names=broken)
    assert bot.send(sid="SM2").text.startswith(f'🎤 "{HEARD}"')
    assert [call.names for call in transcriber.calls] == [["Amara Okafor", "Jonas Weber"], []]


def test_the_logs_hold_neither_the_number_nor_the_words(history, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    VoiceBot(history, FakeTranscriber("Confidential budget figures please")).send()
    VoiceBot(history, FakeTranscriber(error=ModelFailed("timeout"))).send(sid="SM2")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "voice note: 306 bytes fetched" in logged and "34 characters heard" in logged
    assert "voice note not transcribed: timeout" in logged
    assert "Confidential" not in logged and "7700900001" not in logged
