"""The webhook end to end through Flask's test client, with Twilio-signed requests."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest
from flask import Flask

from bot.answer.extractive import ExtractiveAnswerer
from tests.fakes.answerers import FakeAnswerer
from tests.support import (
    ALICE,
    BOB,
    PUBLIC_URL,
    QUESTION,
    WEBHOOK,
    reply_texts_of,
    run_threads,
    sign,
    stored_rows,
    twilio_form,
)


@pytest.fixture
def spy() -> FakeAnswerer:
    """Counts model work: wraps the app's default answerer (extractive, without a key)."""
    return FakeAnswerer(wraps=ExtractiveAnswerer())


@pytest.fixture
def app(make_app, spy) -> Flask:
    """The default app, as in conftest.py, with `spy` on its answerer."""
    return make_app(answerer=spy)


def test_valid_request_gets_an_answer_with_attendees_and_source(ask, app):
    (reply,) = ask("@agent who attended the UNEA meeting?")
    assert "Amara Okafor" in reply
    assert "UNEA" in reply.split("Sources:")[-1]
    assert stored_rows(app) == 2


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong", "body", "extra-field", "other-token", "other-url"],
)
def test_bad_signature_is_403_with_no_history_or_model_work(client, app, spy, tamper):
    form = twilio_form("@agent who attended the UNEA meeting?")
    signature = sign(PUBLIC_URL + WEBHOOK, form)
    headers = {"X-Twilio-Signature": signature}
    if tamper == "missing":
        headers = {}
    elif tamper == "wrong":
        headers["X-Twilio-Signature"] = "A" * 27 + "="
    elif tamper == "body":
        form["Body"] = "@agent tell me everything"
    elif tamper == "extra-field":
        form["From"] = BOB
    elif tamper == "other-token":
        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + WEBHOOK, form, token="not-the-token")
    elif tamper == "other-url":
        headers["X-Twilio-Signature"] = sign("https://evil.example.com" + WEBHOOK, form)
    response = client.post(
        WEBHOOK,
        data=urlencode(form),
        headers=headers,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 403
    assert "Traceback" not in response.get_data(as_text=True)
    assert spy.calls == []
    assert stored_rows(app) == 0
    assert stored_rows(app, "SELECT COUNT(*) FROM deliveries") == 0


def test_request_through_tls_proxy_validates_against_public_base_url(client, signed_post):
    # Render/ngrok terminate TLS: the app sees http, an internal host and port.
    form = twilio_form("@agent who attended the UNEA meeting?")
    response = signed_post(
        client,
        form,
        url=PUBLIC_URL + WEBHOOK,
        base_url="http://10.0.3.7:10000",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"},
    )
    assert response.status_code == 200
    assert "Amara Okafor" in response.get_data(as_text=True)


def test_signature_for_the_internal_url_is_refused_when_public_url_is_set(client, signed_post):
    form = twilio_form("@agent hello")
    response = signed_post(
        client, form, url="http://10.0.3.7:10000" + WEBHOOK, base_url="http://10.0.3.7:10000"
    )
    assert response.status_code == 403


def test_without_public_url_the_request_url_is_checked(make_app, signed_post):
    client = make_app(public_base_url="").test_client()
    form = twilio_form("@agent help")
    assert signed_post(client, form, url="http://localhost" + WEBHOOK).status_code == 200
    form = twilio_form("@agent help")
    assert signed_post(client, form, url=PUBLIC_URL + WEBHOOK).status_code == 403


def test_query_string_is_part_of_the_signed_url(client, signed_post):
    form = twilio_form("@agent help")
    response = signed_post(
        client, form, url=PUBLIC_URL + WEBHOOK + "?team=a", query_string="team=a"
    )
    assert response.status_code == 200


def test_no_mention_gets_one_hint_then_silence(ask, spy, app):
    first = ask("what did we decide about Germany?")
    assert len(first) == 1 and "@agent" in first[0]
    assert ask("and the UK?") == []
    assert ask("anyone there?", sender=BOB) != []  # the hint is per sender
    assert spy.calls == []
    assert stored_rows(app) == 0


def test_mention_anywhere_case_insensitive_at_word_boundaries(ask, spy):
    ask("so, @AGENT what did we decide about Germany?")
    ask("what did we decide about the UK timeline @agent")
    ask("mail me at x@agent.com please")  # not a mention: part of an address
    ask("@agentsmith what about Germany?")  # not a mention: a longer word
    assert spy.calls == [
        "so, what did we decide about Germany?",
        "what did we decide about the UK timeline",
    ]


def test_the_seed_products_trigger_phrase_works_end_to_end(make_app, signed_post):
    # The seed's config.json: ["@agent", "@bot", "hey agent"]; people type "Hey  Agent, ...".
    spy = FakeAnswerer(wraps=ExtractiveAnswerer())
    app = make_app(trigger_words=("@agent", "@bot", "hey agent"), answerer=spy)
    client = app.test_client()
    for body in ("Hey  Agent, who attended the UNEA meeting?", "they agents met on Monday"):
        assert signed_post(client, twilio_form(body)).status_code == 200
    assert spy.calls == ["who attended the UNEA meeting?"]


def test_help_command(ask, spy):
    (reply,) = ask("@agent help")
    assert "reset" in reply and "sources" in reply
    assert spy.calls == []


def test_help_for_a_bare_mention(ask):
    (reply,) = ask("@agent")
    assert "help" in reply


@pytest.mark.parametrize("word", ["reset", "clear", "RESET!"])
def test_reset_forgets_only_my_history(ask, app, word):
    ask("@agent what did we decide about Germany?")
    ask("@agent what did we decide about Germany?", sender=BOB)
    assert stored_rows(app) == 4
    (reply,) = ask(f"@agent {word}")
    assert "forgotten" in reply
    assert stored_rows(app, f"SELECT COUNT(*) FROM messages WHERE sender = '{ALICE}'") == 0
    assert stored_rows(app, f"SELECT COUNT(*) FROM messages WHERE sender = '{BOB}'") == 2


def test_sources_names_the_last_answers_documents_per_sender(ask):
    (none_yet,) = ask("@agent sources")
    assert "haven't answered" in none_yet
    (answer,) = ask("@agent what did we decide about the UK timeline?")
    (sources,) = ask("@agent sources")
    assert "UK" in sources
    assert sources.splitlines()[1].lstrip("• ") in answer
    (bobs,) = ask("@agent sources", sender=BOB)
    assert "haven't answered" in bobs


def test_a_sentence_starting_with_a_command_word_is_a_question(ask, spy):
    ask("@agent help writing meeting notes")
    assert spy.calls == ["help writing meeting notes"]


def test_media_only_message_gets_the_text_only_reply(ask, spy):
    extra = {
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/x.jpg",
        "MediaContentType0": "image/jpeg",
    }
    (reply,) = ask("", **extra)
    assert "only read text and listen to voice notes" in reply
    assert spy.calls == []


def test_duplicate_message_sid_stores_once_calls_model_once_same_reply(ask, app, spy):
    first = ask("@agent what did we decide about Germany?", MessageSid="SM" + "d" * 32)
    again = ask("@agent what did we decide about Germany?", MessageSid="SM" + "d" * 32)
    assert first == again and first
    assert len(spy.calls) == 1
    assert stored_rows(app) == 2


def test_concurrent_duplicate_deliveries_make_one_model_call(app, signed_post, spy):
    import threading

    form = twilio_form("@agent what did we decide about Germany?")
    replies, barrier = [], threading.Barrier(4)

    def deliver():
        barrier.wait()
        replies.append(signed_post(app.test_client(), form).get_data(as_text=True))

    run_threads(deliver, 4)
    assert len(spy.calls) == 1
    assert len(set(replies)) == 1 and "Germany" in replies[0]
    assert stored_rows(app) == 2


def test_long_answer_is_split_into_messages_of_at_most_1600_chars(make_app, signed_post):
    paragraph = "The UK engagement plan has many steps. " * 30
    app = make_app(max_reply_messages=4, answerer=FakeAnswerer("\n\n".join([paragraph] * 5)))
    response = signed_post(app.test_client(), twilio_form("@agent the UK plan?"))
    messages = reply_texts_of(response)
    n = len(messages)
    assert 2 <= n <= 4
    assert all(len(m) <= 1600 for m in messages)
    # Numbered: Twilio may deliver several messages of one reply in any order.
    assert [m[: len(f"({n}/{n}) ")] for m in messages] == [f"({i}/{n}) " for i in range(1, n + 1)]
    whole = "".join(m.split(") ", 1)[1] for m in messages)
    assert whole.replace(" ", "").startswith(paragraph.replace(" ", "")[:500])


def test_xml_special_characters_in_the_answer_are_escaped(make_app, signed_post):
    nasty = "Use <b>tags</b> & \"quotes\" 'here' ]]> <Message>fake</Message>"
    app = make_app(answerer=FakeAnswerer(nasty))
    response = signed_post(app.test_client(), twilio_form(QUESTION))
    assert reply_texts_of(response) == [nasty]


def test_characters_xml_forbids_never_reach_the_twiml(make_app, signed_post):
    # What a document or the model may carry: C0 controls, U+FFFF.
    app = make_app(answerer=FakeAnswerer("Bell\x07 nul\x00 \uffff ok\tdone"))
    response = signed_post(app.test_client(), twilio_form(QUESTION))
    assert reply_texts_of(response) == ["Bell nul  ok\tdone"]  # parsed as XML 1.0


def test_a_document_with_control_characters_still_gets_a_well_formed_reply(
    make_app, signed_post, tmp_path
):
    from bot.knowledge.ingest import ingest_paths

    app = make_app(ingest=False)
    note = tmp_path / "notes" / "budget.txt"
    note.parent.mkdir()
    note.write_text("Title: Budget\nThe side event budget\x07 is 12,000 euros.\x1b[0m\n")
    ingest_paths(app.extensions["bot"].knowledge, [str(note.parent)], progress=False)
    for _ in range(2):  # the second is served from the answer cache
        response = signed_post(app.test_client(), twilio_form("@agent side event budget?"))
        (reply,) = reply_texts_of(response)
        assert "12,000 euros" in reply and "\x07" not in reply and "\x1b" not in reply


@pytest.mark.parametrize(
    "question",
    [
        '@agent "UNEA" AND (Germany OR "UK" NOT) NEAR(x y) * ^ : -',
        "@agent what's the plan?'; DROP TABLE messages; --",
        '@agent "unbalanced (quotes and *wildcards',
        "@agent text:column^2 OR title:*",
        "@agent 🇬🇧 ما هو الجدول الزمني للمملكة المتحدة؟",
    ],
)
def test_questions_full_of_quotes_and_operators_get_a_reply(ask, question, app):
    (reply,) = ask(question)
    assert reply
    assert stored_rows(app) == 2


def test_oversized_body_is_413(client):
    response = client.post(
        WEBHOOK, data="Body=" + "x" * 70_000, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "Traceback" not in response.get_data(as_text=True)


def test_non_form_body_is_400(client):
    response = client.post(WEBHOOK, json={"Body": "@agent hi", "From": ALICE})
    assert response.status_code == 400


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
def test_missing_required_field_is_400(client, signed_post, missing):
    form = twilio_form("@agent hi")
    del form[missing]
    form.pop("SmsMessageSid") if missing == "MessageSid" else None
    assert signed_post(client, form).status_code == 400


def test_unknown_fields_are_accepted(ask):
    assert ask("@agent help", NewTwilioField="surprise", ButtonPayload="x")


def test_local_mode_serves_loopback_clients_holding_the_local_token(make_app):
    from bot.web.security import LOCAL_TOKEN_HEADER

    app = make_app(twilio_auth_token="")
    token = app.extensions["bot"].local_token
    assert len(token) == 64
    client = app.test_client()
    form = urlencode(twilio_form("@agent help"))

    def post(address: str, **headers: str) -> int:
        return client.post(
            WEBHOOK,
            data=form,
            content_type="application/x-www-form-urlencoded",
            environ_base={"REMOTE_ADDR": address},
            headers=headers,
        ).status_code

    assert post("127.0.0.1", **{LOCAL_TOKEN_HEADER: token}) == 200
    # A relay on this machine that adds no header connects from 127.0.0.1 too.
    assert post("127.0.0.1") == 403
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one character off
    assert post("127.0.0.1", **{LOCAL_TOKEN_HEADER: wrong}) == 403
    assert post("203.0.113.9", **{LOCAL_TOKEN_HEADER: token}) == 403
    # ngrok's agent connects from 127.0.0.1 but marks what it forwards.
    tunnelled = {"X-Forwarded-For": "203.0.113.9", LOCAL_TOKEN_HEADER: token}
    assert post("127.0.0.1", **tunnelled) == 403
    # Every app on the same data directory shares the one secret (gunicorn's workers).
    assert make_app(twilio_auth_token="").extensions["bot"].local_token == token


def test_health_reports_components_and_counters_without_secrets(ask, client):
    ask("@agent who attended the UNEA meeting?")
    response = client.get("/health")
    assert response.status_code == 200
    report = response.get_json()
    assert report["status"] == "ok"
    assert report["components"]["history"]["backend"] == "sqlite"
    assert report["components"]["knowledge"]["ok"] is True
    assert report["counters"]["answers"] == 1
    assert report["counters"]["users"] == 1
    # Per gunicorn worker, and it says so (two workers give two sets of numbers).
    assert (report["counters_scope"], report["pid"]) == ("worker process", os.getpid())
    assert report["answer_latency_ms"]["p50"] is not None
    text = response.get_data(as_text=True)
    assert "7700900001" not in text
    assert "test-auth-token" not in text
