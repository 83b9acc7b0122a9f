"""Many senders at once through the webhook, history on PostgreSQL, the model a stand-in."""

from __future__ import annotations

import re
import threading

from tests.services.postgres import run_sql
from tests.support import reply_texts_of, run_threads, twilio_form

SENDERS = 50
QUESTIONS = 10
KEEP = 10  # messages of history per conversation: the last 5 exchanges
TAG = re.compile(r"\bs(\d+)q(\d+)\b")


def sender(n: int) -> str:
    return f"whatsapp:+4477009{n:05d}"


def tags(text: str) -> set[tuple[int, int]]:
    return {(int(s), int(q)) for s, q in TAG.findall(text)}


def test_fifty_senders_each_see_only_their_own_turns(make_app, mistral, pg_url, signed_post):
    app = make_app(
        mistral_api_key="k",
        mistral_server_url=mistral.url,
        database_url=pg_url,
        max_conversation_history=KEEP,
        response_timeout_seconds=14.0,
    )
    failures: list[str] = []
    start = threading.Barrier(SENDERS)

    def converse(n: int) -> None:
        client = app.test_client()
        start.wait()
        for q in range(QUESTIONS):
            body = f"@agent s{n}q{q} what did we decide about Germany?"
            texts = reply_texts_of(signed_post(client, twilio_form(body, sender(n))))
            if not texts or f"s{n}q{q}" not in texts[0]:
                failures.append(f"sender {n} question {q}: {texts!r}")

    run_threads(converse, each=range(SENDERS))
    assert failures == []

    # One model call per question, each carrying exactly that sender's latest exchanges.
    requests = mistral.chat_requests
    assert len(requests) == SENDERS * QUESTIONS
    for request in requests:
        messages = request["messages"]
        ((n, q),) = tags(messages[-1]["content"].rsplit("Question:", 1)[-1])
        seen = set().union(*(tags(m["content"]) for m in messages[1:-1]))
        expected = {(n, earlier) for earlier in range(max(0, q - KEEP // 2), q)}
        assert seen == expected, f"sender {n} question {q}"
    assert app.extensions["bot"].metrics.snapshot()["counters"]["fallbacks"] == 0

    # Exactly the expected rows: pruned to the last 5 exchanges per conversation.
    rows = run_sql(pg_url, "SELECT sender, role, text FROM messages")
    assert len(rows) == SENDERS * KEEP
    for n in range(SENDERS):
        mine = [(role, tags(text)) for s, role, text in rows if s == sender(n)]
        kept = {(n, q) for q in range(QUESTIONS - KEEP // 2, QUESTIONS)}
        assert sorted(role for role, _ in mine) == ["assistant"] * 5 + ["user"] * 5
        assert set().union(*(t for _, t in mine)) == kept
    assert run_sql(pg_url, "SELECT state, count(*) FROM deliveries GROUP BY state") == [
        ("done", SENDERS * QUESTIONS)
    ]
    assert run_sql(pg_url, "SELECT count(*), min(questions), max(questions) FROM usage") == [
        (SENDERS, QUESTIONS, QUESTIONS)
    ]


def test_two_concurrent_deliveries_of_one_message_make_one_model_call(
    make_app, mistral, pg_url, signed_post
):
    app = make_app(mistral_api_key="k", mistral_server_url=mistral.url, database_url=pg_url)
    mistral.delay = 0.5  # the first delivery is still answering when the second arrives
    form = twilio_form("@agent what did we decide about Germany?")
    barrier, replies = threading.Barrier(2), []

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        replies.append(reply_texts_of(signed_post(client, form)))

    run_threads(deliver, 2)
    assert replies[0] == replies[1]
    assert replies[0][0].startswith("Stub answer to: what did we decide about Germany?")
    assert len(mistral.chat_requests) == 1
    sid = form["MessageSid"]
    assert run_sql(
        pg_url, "SELECT role FROM messages WHERE message_sid = %s ORDER BY role", (sid,)
    ) == [
        ("assistant",),
        ("user",),
    ]
