"""Voice notes through the whole app: signed webhook, Twilio's media endpoint and its CDN as
local stand-ins, the real Mistral SDK against the Mistral stand-in, the sample knowledge."""

from __future__ import annotations

import time

import pytest

from bot.answer.extractive import ExtractiveAnswerer
from bot.answer.mistral import MistralTranscriber
from bot.config_values import collections as collections_value
from bot.texts import MEDIA_REPLY, VOICE_FAILED, VOICE_OFF
from tests.fakes.mistral_server import MistralStub
from tests.fakes.transcriber import FakeTranscriber
from tests.fakes.twilio_media import ACCOUNT_SID, MediaHost, Served, media_path, redirect
from tests.support import ALICE, API_KEY, APP_MEDIA_AUTH, BOB, reply_texts_of, twilio_form

# A WhatsApp voice note as far as the checks go: an Ogg page header, then Opus data.
OGG = b"OggS\x00\x02" + bytes(20) + b"OpusHead\x01\x01" + bytes(400)
HEARD = "Who attended the UNEA preparation meeting?"
MODEL = "voxtral-test-latest"


@pytest.fixture
def voice_app(make_app, twilio_api, mistral: MistralStub):
    """Factory: the app with media from the stand-ins and, by default, a Mistral key."""

    def build(key: bool = True, **overrides):
        settings = {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_media_base_url": twilio_api.base_url,
            "mistral_server_url": mistral.url,
            "mistral_transcription_model": MODEL,
            "mistral_api_key": API_KEY if key else "",
            **overrides,
        }
        app = make_app(**settings)
        mistral.reset()  # forget the sample's embedding requests
        return app

    return build


def voice_note(
    twilio_api: MediaHost, cdn: MediaHost, number: int = 1, sender: str = ALICE, **extra
) -> dict:
    """A signed-ready webhook form for a voice note Twilio stores at `media_path(number)`."""
    file_url = cdn.serve(f"/voice/{number}", Served(body=OGG))
    url = twilio_api.serve(media_path(number), redirect(file_url))
    return twilio_form(
        "",
        sender,
        NumMedia="1",
        MediaUrl0=url,
        MediaContentType0="audio/ogg; codecs=opus",
        **extra,
    )


def test_a_voice_note_is_answered_from_the_knowledge_with_what_was_heard_first(
    voice_app, twilio_api, cdn, mistral, signed_post
) -> None:
    app = voice_app(answerer=ExtractiveAnswerer())
    mistral.transcript = HEARD
    [reply] = reply_texts_of(signed_post(app.test_client(), voice_note(twilio_api, cdn)))
    heading, answer = reply.split("\n\n", 1)
    assert heading == f'🎤 "{HEARD}"'
    assert "Amara Okafor" in answer and "UNEA-8 preparation meeting" in answer
    # The credentials went to Twilio's API host only, the audio to the transcription.
    assert [seen.authorization for seen in twilio_api.seen] == [APP_MEDIA_AUTH]
    assert [seen.authorization for seen in cdn.seen] == [None]
    (request,) = mistral.transcription_requests
    assert (request.files["file"].data, request.files["file"].content_type) == (OGG, "audio/ogg")
    assert request.form["model"] == [MODEL]
    assert not [name for name in request.form if "language" in name or "translat" in name]
    # The sample's people, as spelling hints: those in the most documents first.
    assert request.form["context_bias"][:2] == ["Jonas Weber", "Amara Okafor"]


def test_the_spelling_hints_are_the_people_of_the_documents_the_sender_may_read(
    voice_app, twilio_api, cdn, mistral, signed_post
) -> None:
    """The sample is in "general", which only ALICE reads: BOB's voice note carries none of
    its people's names to the transcription."""
    app = voice_app(
        answerer=ExtractiveAnswerer(),
        knowledge_collections=collections_value({"general": [ALICE], "board": [BOB]}),
    )
    mistral.transcript = HEARD
    client = app.test_client()
    signed_post(client, voice_note(twilio_api, cdn, 1, ALICE))
    signed_post(client, voice_note(twilio_api, cdn, 2, BOB))
    alice, bob = mistral.transcription_requests
    assert alice.form["context_bias"][:2] == ["Jonas Weber", "Amara Okafor"]
    assert "context_bias" not in bob.form or bob.form["context_bias"] == []


def test_with_the_model_answering_the_transcript_is_the_question(
    voice_app, twilio_api, cdn, mistral, signed_post
) -> None:
    app = voice_app()
    mistral.transcript = HEARD
    [reply] = reply_texts_of(signed_post(app.test_client(), voice_note(twilio_api, cdn)))
    assert reply.startswith(f'🎤 "{HEARD}"\n\nStub answer to: {HEARD}')
    (chat,) = mistral.chat_requests
    prompt = str(chat["messages"])
    assert "Amara Okafor" in prompt  # the sample's passage on the meeting


@pytest.mark.parametrize("failure", ["hang", "http-500"])
def test_a_slow_or_failing_transcription_gets_its_reply_well_before_the_deadline(
    voice_app, twilio_api, cdn, mistral, signed_post, failure
) -> None:
    app = voice_app(response_timeout_seconds=3.0)
    if failure == "hang":
        mistral.delay = 30.0
    else:
        mistral.statuses = [500] * 10
    started = time.monotonic()
    [reply] = reply_texts_of(signed_post(app.test_client(), voice_note(twilio_api, cdn)))
    elapsed = time.monotonic() - started
    assert reply == VOICE_FAILED.format(trigger="@agent")
    # The transcription may use 3 s less the answer's reserve (35%, about 1 s).
    assert elapsed < 2.5
    assert mistral.transcription_requests and mistral.chat_requests == []


def test_without_a_key_a_voice_note_gets_one_short_reply_and_nothing_is_sent(
    voice_app, twilio_api, cdn, mistral, signed_post
) -> None:
    app = voice_app(key=False)
    [reply] = reply_texts_of(signed_post(app.test_client(), voice_note(twilio_api, cdn)))
    assert reply == VOICE_OFF.format(trigger="@agent")
    assert mistral.requests == [] and twilio_api.seen == []


@pytest.mark.parametrize(
    ("heard", "replied"),
    [(HEARD, False), (f"Hey agent, {HEARD.lower()}", True)],
    ids=["no-trigger", "trigger"],
)
def test_in_a_group_a_voice_note_without_a_trigger_word_is_ignored(
    voice_app, twilio_api, cdn, mistral, signed_post, heard, replied
) -> None:
    app = voice_app(enable_group_chat=True, trigger_words=("@agent", "hey agent"))
    mistral.transcript = heard
    form = voice_note(twilio_api, cdn, ConversationSid="CH" + "a" * 32)
    replies = reply_texts_of(signed_post(app.test_client(), form))
    if replied:
        [reply] = replies
        assert reply.startswith(f'🎤 "{heard}"\n\nStub answer to: {HEARD.lower()}')
    else:
        assert replies == [] and mistral.chat_requests == []
    assert len(mistral.transcription_requests) == 1


def test_a_photo_still_gets_the_text_and_voice_reply(voice_app, twilio_api, mistral, signed_post):
    app = voice_app()
    form = twilio_form(
        "",
        NumMedia="1",
        MediaUrl0=twilio_api.url(media_path(2)),
        MediaContentType0="image/jpeg",
    )
    assert reply_texts_of(signed_post(app.test_client(), form)) == [
        MEDIA_REPLY.format(trigger="@agent")
    ]
    assert twilio_api.seen == [] and mistral.requests == []


def test_the_app_builds_the_configured_transcriber_or_uses_one_given(
    voice_app, make_app, settings_for
) -> None:
    services = voice_app().extensions["bot"]
    assert isinstance(services.transcriber, MistralTranscriber)
    assert services.transcriber.model == MODEL
    assert voice_app(key=False).extensions["bot"].transcriber is None
    from bot import create_app

    given = FakeTranscriber()
    app = create_app(settings_for(), transcriber=given)
    app.extensions["bot"].close()
    assert app.extensions["bot"].transcriber is given and given.closed
