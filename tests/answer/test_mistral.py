"""MistralAnswerer through the real SDK against the local stand-in of the API."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.answer import ExtractiveAnswerer, FallbackAnswerer, build_answerer
from bot.answer.mistral import MistralAnswerer
from bot.answer.whatsapp import to_whatsapp
from bot.deadline import Deadline
from bot.errors import AnswerFailed
from tests.fakes.mistral_server import TRICKLE_MODES, MistralStub
from tests.support import API_KEY

MARGIN = 0.5  # past the budget: scheduling on a loaded machine, never a slow server


def wait_for(condition, seconds: float = 5.0) -> bool:
    """True once `condition()` is, polling for at most `seconds`."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_passages_history_and_question_reach_the_model(stub, mistral, passages, turns):
    answer = mistral.answer("Who attended?", passages, turns, Deadline(5))
    assert answer.backend == "mistral"
    assert answer.tokens == sum(stub.usage)
    [request] = stub.requests
    assert request.path == "/v1/chat/completions"
    assert request.authorization == f"Bearer {API_KEY}"
    body = request.json
    assert body["model"] == "mistral-small-latest"
    assert body["max_tokens"] == mistral.max_tokens
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == turns[0].text
    assert messages[2]["content"] == turns[1].text
    final = messages[-1]["content"]
    assert "<passages>" in final and "untrusted" in final.lower()
    assert passages[0].text in final and passages[1].source in final
    assert final.rstrip().endswith("Who attended?")
    assert "untrusted" in messages[0]["content"]
    assert answer.text.startswith("Stub answer to: Who attended?")


def test_sources_are_appended_when_the_model_omits_them(stub, mistral, passages):
    stub.reply = "Amina, Lars and Sofia."
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert answer.text.splitlines()[-1] == f"Sources: {passages[0].source}; {passages[1].source}"
    assert answer.sources == (passages[0].source, passages[1].source)


def test_sources_named_by_the_model_are_kept_once(stub, mistral, passages):
    stub.reply = f"Amina, Lars and Sofia.\n\nSources: {passages[0].source}"
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert answer.text.count("Sources:") == 1
    assert answer.sources == (passages[0].source,)


def test_sources_by_number_only_are_replaced_with_labels(stub, mistral, passages):
    stub.reply = "Amina, Lars and Sofia.\nSources: [1]"
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert answer.text.count("Sources:") == 1
    assert passages[0].source in answer.text.splitlines()[-1]


def test_markdown_becomes_whatsapp_formatting(stub, mistral, passages):
    stub.reply = "## Attendees\n\n**Amina** and __Lars__, see [notes](https://ex.org/n)."
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert not any(line.lstrip().startswith("#") for line in answer.text.splitlines())
    assert "**" not in answer.text and "__" not in answer.text
    assert answer.text.startswith("*Attendees*")
    assert "*Amina* and *Lars*" in answer.text
    assert "notes (https://ex.org/n)" in answer.text


def test_characters_no_reply_can_carry_are_dropped_from_the_model_text(stub, mistral, passages):
    # JSON escapes can carry control characters and noncharacters that XML 1.0 forbids.
    stub.reply = "Amina\x07 attended. Bell\x00 done\ufffe."
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert answer.text.startswith("Amina attended. Bell done.")
    # ... and lone surrogates ("\\ud800"), which cannot even be stored as UTF-8.
    assert to_whatsapp("Lone\ud800 surrogate").encode("utf-8") == b"Lone surrogate"


def test_hanging_model_falls_back_before_the_deadline(stub, fallback, passages):
    stub.delay = 30
    started = time.monotonic()
    answer = fallback.answer("Who attended?", passages, [], Deadline(2))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert answer.backend == "extractive"
    assert answer.fallback_reason == "timeout"
    assert "Attendees: Amina Diallo" in answer.text


@pytest.mark.parametrize("mode", TRICKLE_MODES)
def test_a_trickled_or_endless_response_falls_back_within_the_budget(
    stub, fallback, passages, mode
):
    # Each read gets data before a per-read timeout: only an overall deadline ends these.
    stub.trickle = mode
    started = time.monotonic()
    answer = fallback.answer("Who attended?", passages, [], Deadline(2))
    elapsed = time.monotonic() - started
    print(f"\nanswer, {mode} trickled: fell back after {elapsed:.2f}s of a 2 s budget")
    assert answer.backend == "extractive"
    assert answer.fallback_reason == "timeout"
    assert elapsed < 2 + MARGIN


def test_a_call_cut_short_closes_its_connection_and_the_next_call_works(stub, mistral, passages):
    stub.trickle = "body"
    started = time.monotonic()
    with pytest.raises(AnswerFailed) as failed:
        mistral.answer("Who attended?", passages, [], Deadline(2))
    cut_after = time.monotonic() - started
    assert failed.value.reason == "timeout" and cut_after < 2 + MARGIN
    [cut] = stub.requests
    stub.trickle = None  # not reset(): the stand-in keeps trickling until the client hangs up
    started = time.monotonic()
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    print(
        f"\ncut after {cut_after:.2f}s; the next call answered in "
        f"{time.monotonic() - started:.2f}s on a new connection"
    )
    assert answer.backend == "mistral"
    # A half-read response never goes back to the pool: the next call used a new
    # connection, and the stand-in saw the client close the old one.
    assert stub.requests[1].port != cut.port
    assert wait_for(lambda: cut.port in stub.abandoned)


def test_a_redirect_shares_its_calls_budget(stub, fallback, passages):
    # A 307 after 1 s, then 1 s more before a trickled body: the redirected request gets
    # what the call has left, not a budget of its own (1 s + 1.7 s).
    stub.statuses, stub.delay, stub.trickle = [307], 1.0, "body"
    started = time.monotonic()
    answer = fallback.answer("Who attended?", passages, [], Deadline(2))
    elapsed = time.monotonic() - started
    print(f"\nredirected, then trickled: fell back after {elapsed:.2f}s of a 2 s budget")
    assert len(stub.chat_requests) == 2  # the redirect was followed
    assert answer.fallback_reason == "timeout"
    assert elapsed < 2 + MARGIN


def test_concurrent_calls_each_end_by_their_own_deadline(stub, mistral, passages):
    stub.trickle = "body"
    budgets = [2.0, 3.5] * 4

    def cut_after(budget: float) -> tuple[str, float]:
        started = time.monotonic()
        try:
            mistral.answer("Who attended?", passages, [], Deadline(budget))
            reason = "answered"
        except AnswerFailed as exc:
            reason = exc.reason
        return reason, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(budgets)) as pool:
        results = list(pool.map(cut_after, budgets))
    pairs = list(zip(budgets, results, strict=True))
    print("\n" + ", ".join(f"{b:g}s budget: {t:.2f}s" for b, (_, t) in pairs))
    for budget, (reason, elapsed) in pairs:
        assert reason == "timeout"
        # Not before its own budget (less the reserve), not after it: no shared end time.
        assert budget - mistral.reserve - MARGIN < elapsed < budget + MARGIN


def test_429_then_200_is_retried(stub, mistral, passages):
    stub.statuses = [429]
    answer = mistral.answer("Who attended?", passages, [], Deadline(5))
    assert answer.backend == "mistral"
    assert len(stub.chat_requests) == 2


def test_small_retry_after_is_honoured(stub, mistral, passages):
    stub.statuses, stub.retry_after = [503], 0.6
    started = time.monotonic()
    mistral.answer("Who attended?", passages, [], Deadline(5))
    assert time.monotonic() - started >= 0.6
    assert len(stub.chat_requests) == 2


def test_retry_after_beyond_the_budget_gives_up_at_once(stub, mistral, passages):
    stub.statuses, stub.retry_after = [429], 30
    started = time.monotonic()
    with pytest.raises(AnswerFailed) as failed:
        mistral.answer("Who attended?", passages, [], Deadline(5))
    assert failed.value.reason == "http 429"
    assert len(stub.chat_requests) == 1
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_persistent_errors_fall_back_with_the_reason(stub, fallback, passages, status):
    stub.statuses = [status] * 20
    started = time.monotonic()
    answer = fallback.answer("Who attended?", passages, [], Deadline(3))
    assert time.monotonic() - started < 3
    assert answer.backend == "extractive"
    assert answer.fallback_reason == f"http {status}"
    assert 2 <= len(stub.chat_requests) <= 4


@pytest.mark.parametrize("status", [400, 401, 422])
def test_client_errors_are_not_retried(stub, mistral, passages, status):
    stub.statuses = [status]
    with pytest.raises(AnswerFailed) as failed:
        mistral.answer("Who attended?", passages, [], Deadline(5))
    assert failed.value.reason == f"http {status}"
    assert len(stub.chat_requests) == 1


def test_empty_model_text_is_a_failure(stub, mistral, passages):
    stub.reply = "   "
    with pytest.raises(AnswerFailed) as failed:
        mistral.answer("Who attended?", passages, [], Deadline(5))
    assert failed.value.reason == "empty response"


def test_unreachable_server_is_a_connection_error(passages):
    with MistralStub() as gone:
        url = gone.url
    answerer = MistralAnswerer(API_KEY, "mistral-small-latest", server_url=url)
    try:
        answer = FallbackAnswerer(answerer).answer("Who attended?", passages, [], Deadline(3))
    finally:
        answerer.close()
    assert answer.fallback_reason == "connection error"


def test_too_little_time_makes_no_request(stub, fallback, passages):
    answer = fallback.answer("Who attended?", passages, [], Deadline(0.6))
    assert answer.fallback_reason == "no time"
    assert stub.requests == []


def test_without_a_key_no_request_is_ever_made(stub, passages):
    for key in (None, ""):
        answerer = build_answerer(key, "mistral-small-latest", server_url=stub.url)
        assert isinstance(answerer, ExtractiveAnswerer)
        answer = answerer.answer("Who attended?", passages, [], Deadline(5))
        assert answer.backend == "extractive" and answer.fallback_reason == ""
    assert stub.requests == []


def test_with_a_key_build_answerer_uses_mistral(stub, passages):
    answerer = build_answerer(API_KEY, "mistral-small-latest", server_url=stub.url)
    try:
        answer = answerer.answer("Who attended?", passages, [], Deadline(5))
    finally:
        answerer.close()
    assert answer.backend == "mistral"
    assert len(stub.chat_requests) == 1


def test_failures_log_one_line_without_secrets(stub, mistral, passages, caplog):
    stub.statuses = [500] * 20
    with caplog.at_level(logging.DEBUG):
        FallbackAnswerer(mistral).answer("Who attended?", passages, [], Deadline(2))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].exc_info is None and "http 500" in warnings[0].getMessage()
    assert API_KEY not in caplog.text
    assert "Who attended?" not in caplog.text and passages[0].text not in caplog.text
    assert API_KEY not in repr(mistral)


def test_one_client_per_process_recreated_after_fork_or_reset(mistral, monkeypatch):
    client = mistral.client()
    assert mistral.client() is client
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as seen from a forked child
    forked = mistral.client()
    assert forked is not client
    monkeypatch.undo()
    mistral.reset()
    assert mistral.client() not in (client, forked)


def test_concurrent_calls_share_the_pool(stub, mistral, passages):
    stub.delay = 0.3
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(lambda i: mistral.answer(f"q{i}", passages, [], Deadline(5)), range(16))
        )
    assert all(a.backend == "mistral" for a in answers)
    assert time.monotonic() - started < 16 * 0.3 / 2  # ran in parallel, not one by one
    questions = {
        r["messages"][-1]["content"].rsplit("Question: ", 1)[1] for r in stub.chat_requests
    }
    assert questions == {f"q{i}" for i in range(16)}
