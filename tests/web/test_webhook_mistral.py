"""The webhook with the real mistralai SDK talking to a local stand-in of Mistral's API."""

from __future__ import annotations

import time

import pytest

from tests.support import ALICE, BOB, reply_texts_of, twilio_form


@pytest.fixture
def mistral_app(make_app, mistral):
    return make_app(mistral_api_key="test-mistral-key", mistral_server_url=mistral.url)


@pytest.fixture
def send(mistral_app, signed_post):
    client = mistral_app.test_client()

    def post(body: str, sender: str = ALICE) -> tuple[list[str], float]:
        started = time.monotonic()
        response = signed_post(client, twilio_form(body, sender))
        return reply_texts_of(response), time.monotonic() - started

    return post


def all_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


def test_passages_and_this_senders_turns_reach_the_model(send, mistral):
    mistral.reply = "Germany was deprioritised for lack of capacity."
    send("@agent what did we decide about Germany?", sender=BOB)
    send("@agent what did we decide about Germany?")
    mistral.reply = "Because the team lacked staff."
    (reply,), _ = send("@agent why was that decided?")

    last = mistral.chat_requests[-1]
    text = all_text(last)
    assert last["model"] == "mistral-small-latest"
    # The follow-up still retrieved the Germany discussion from the sample notes.
    assert "Germany" in last["messages"][-1]["content"]
    # This sender's earlier exchange is in the prompt as turns; Bob's is not.
    roles = [m["role"] for m in last["messages"]]
    assert roles[0] == "system" and roles.count("assistant") == 1
    assert "Germany was deprioritised for lack of capacity." in text
    assert sum(m["content"] == "what did we decide about Germany?" for m in last["messages"]) == 1
    assert mistral.requests[-1].authorization == "Bearer test-mistral-key"
    assert reply.startswith("Because the team lacked staff.")
    assert "Sources:" in reply


def test_other_senders_history_never_reaches_the_prompt(send, mistral):
    mistral.reply = "Bob's secret answer about the UNEA budget."
    send("@agent what did we decide about the UNEA budget?", sender=BOB)
    mistral.reply = "ok"
    send("@agent what did we decide about the UK timeline?")
    assert "Bob's secret" not in all_text(mistral.chat_requests[-1])
    assert "UNEA budget" not in all_text(mistral.chat_requests[-1])


def test_a_hanging_model_yields_the_extractive_fallback_before_the_deadline(
    make_app, mistral, signed_post
):
    app = make_app(
        mistral_api_key="k", mistral_server_url=mistral.url, response_timeout_seconds=3.0
    )
    mistral.delay = 60
    started = time.monotonic()
    response = signed_post(app.test_client(), twilio_form("@agent who attended the UNEA meeting?"))
    elapsed = time.monotonic() - started
    (reply,) = reply_texts_of(response)
    assert elapsed < 3.0
    assert "Amara Okafor" in reply
    assert "Sources:" in reply
    assert app.extensions["bot"].metrics.snapshot()["counters"]["fallbacks"] == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_persistent_errors_yield_the_fallback(send, mistral, status):
    mistral.statuses = [status] * 50
    (reply,), elapsed = send("@agent who attended the UNEA meeting?")
    assert "Amara Okafor" in reply
    assert elapsed < 5.0
    assert len(mistral.chat_requests) >= 1


def test_a_transient_429_is_retried_within_the_budget(send, mistral):
    mistral.statuses = [200, 429]  # the question's embedding, then the chat completion
    mistral.reply = "The attendees were Amara, Jonas, Priya and Tom."
    (reply,), _ = send("@agent who attended the UNEA meeting?")
    assert reply.startswith("The attendees were")
    assert len(mistral.chat_requests) == 2


def test_no_request_is_made_without_a_key(make_app, mistral, signed_post):
    app = make_app(mistral_api_key="", mistral_server_url=mistral.url)
    (reply,) = reply_texts_of(signed_post(app.test_client(), twilio_form("@agent UNEA?")))
    assert reply
    assert mistral.requests == []


def test_a_duplicate_delivery_makes_no_second_model_call(mistral_app, mistral, signed_post):
    form = twilio_form("@agent what did we decide about Germany?")
    first = signed_post(mistral_app.test_client(), form).get_data()
    second = signed_post(mistral_app.test_client(), form).get_data()
    assert first == second
    assert len(mistral.chat_requests) == 1
