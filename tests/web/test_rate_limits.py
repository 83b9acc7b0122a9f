"""Per-sender rate limits: memory and real Redis, one process and real gunicorn workers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlencode

import pytest

from bot.answer.extractive import ExtractiveAnswerer
from bot.texts import RATE_LIMIT_NOTICE
from bot.web.limits import SweptMemoryStorage
from tests.fakes.answerers import FakeAnswerer
from tests.services import free_port
from tests.support import (
    ALICE,
    BOB,
    PUBLIC_URL,
    REPO,
    SAMPLE,
    WEBHOOK,
    reply_texts_of,
    sign,
    twilio_form,
)


def limited_app(make_app, limit: str = "3 per minute", **overrides):
    """An app with this rate limit and a spy on its (default) answerer."""
    spy = FakeAnswerer(wraps=ExtractiveAnswerer())
    return make_app(rate_limit=limit, answerer=spy, **overrides)


def send_all(app, signed_post, bodies, sender=ALICE):
    client = app.test_client()
    return [reply_texts_of(signed_post(client, twilio_form(b, sender))) for b in bodies]


def test_limit_then_one_notice_then_silence_and_no_model_calls(make_app, signed_post):
    app = limited_app(make_app)
    replies = send_all(app, signed_post, ["@agent UNEA attendees?"] * 6)
    assert all(replies[i] and replies[i] != [RATE_LIMIT_NOTICE] for i in range(3))
    assert replies[3] == [RATE_LIMIT_NOTICE]
    assert replies[4:] == [[], []]
    assert len(app.extensions["bot"].handler.answerer.calls) == 3
    assert app.extensions["bot"].metrics.snapshot()["counters"]["rate_limited"] == 3


def test_every_signed_message_counts_commands_and_unmentioned_too(make_app, signed_post):
    app = limited_app(make_app)
    replies = send_all(app, signed_post, ["@agent help", "no mention here", "@agent reset", "x"])
    assert replies[3] == [RATE_LIMIT_NOTICE]


def test_limits_are_per_sender(make_app, signed_post):
    app = limited_app(make_app, "1 per minute")
    send_all(app, signed_post, ["@agent help"])
    assert send_all(app, signed_post, ["@agent help"]) == [[RATE_LIMIT_NOTICE]]
    assert send_all(app, signed_post, ["@agent help"], sender=BOB)[0] != [RATE_LIMIT_NOTICE]


def test_unsigned_flood_with_a_victims_number_spends_none_of_their_budget(make_app, signed_post):
    app = limited_app(make_app, "2 per minute")
    client = app.test_client()
    for _ in range(20):
        forged = twilio_form("@agent help", ALICE)
        response = client.post(
            WEBHOOK, data=urlencode(forged), content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": sign(PUBLIC_URL + WEBHOOK, forged, token="guess")},
        )  # fmt: skip
        assert response.status_code == 403
    replies = send_all(app, signed_post, ["@agent help", "@agent help"])
    assert RATE_LIMIT_NOTICE not in sum(replies, [])


def test_refused_senders_spend_no_budget(make_app, signed_post):
    app = limited_app(make_app, "1 per minute", allowed_senders=("whatsapp:+15555550100",))
    for _ in range(3):
        send_all(app, signed_post, ["@agent help"], sender=ALICE)
    (reply,) = send_all(app, signed_post, ["@agent help"], sender="whatsapp:+15555550100")
    assert reply != [RATE_LIMIT_NOTICE]


def test_health_is_exempt(make_app):
    client = limited_app(make_app, "1 per minute").test_client()
    assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_redis_storage_is_shared_between_app_instances(make_app, signed_post, redis_server):
    one = limited_app(make_app, "2 per minute", ratelimit_storage_uri=redis_server.url)
    two = limited_app(make_app, "2 per minute", ratelimit_storage_uri=redis_server.url)
    send_all(one, signed_post, ["@agent help"])
    send_all(two, signed_post, ["@agent help"])
    assert send_all(one, signed_post, ["@agent help"]) == [[RATE_LIMIT_NOTICE]]
    assert one.test_client().get("/health").get_json()["components"]["rate_limit"] == {
        "backend": "redis", "ok": True,
        "latency_ms": pytest.approx(0, abs=1000),
    }  # fmt: skip


def test_redis_outage_falls_back_to_memory_and_says_so(make_app, signed_post, redis_server, caplog):
    app = limited_app(make_app, "3 per minute", ratelimit_storage_uri=redis_server.url)
    client = app.test_client()
    send_all(app, signed_post, ["@agent help"])
    redis_server.stop()
    try:
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            replies = send_all(app, signed_post, ["@agent UNEA attendees?"] * 5)
        # No request failed; limiting went on in this process's memory.
        assert all(r for r in replies[:3]) and RATE_LIMIT_NOTICE not in sum(replies[:3], [])
        assert replies[3] == [RATE_LIMIT_NOTICE]
        assert time.monotonic() - started < 10
        assert "falling back to in-memory storage" in caplog.text
        report = client.get("/health").get_json()
        assert report["status"] == "degraded"
        assert report["components"]["rate_limit"]["ok"] is False
        assert report["components"]["rate_limit"]["fallback"] == "memory (per process)"
    finally:
        redis_server.start()
    assert client.get("/health").get_json()["components"]["rate_limit"]["ok"] is True


def test_gunicorn_workers_share_one_limit_through_redis(tmp_path, redis_server):
    """Three real worker processes, one Redis: together they allow exactly the limit."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"whatsapp": {"allowed_senders": ["*"], "rate_limit": "4 per minute"}})
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CONFIG_PATH": str(config),
        "DATA_DIR": str(tmp_path / "data"),
        "TWILIO_AUTH_TOKEN": "gunicorn-test-token",
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "RATELIMIT_STORAGE_URI": redis_server.url,
    }
    flask = [sys.executable, "-m", "flask", "--app", "app", "ingest", str(SAMPLE)]
    subprocess.run(flask, cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "3", "-k", "gthread", "--threads", "2",
         "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        replies = []
        for i in range(10):
            form = twilio_form("@agent help", ALICE)
            headers = {
                "X-Twilio-Signature": sign(PUBLIC_URL + WEBHOOK, form, "gunicorn-test-token"),
                "Content-Type": "application/x-www-form-urlencoded",
                "Connection": "close",  # a new connection each time, so workers take turns
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{WEBHOOK}", data=urlencode(form).encode(), headers=headers
            )
            for _ in range(100):
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        assert response.status == 200
                        replies.append(response.read().decode())
                    break
                except OSError:  # connection refused while the workers boot
                    time.sleep(0.1)
            assert len(replies) == i + 1
        answered = [r for r in replies if "<Message>" in r and RATE_LIMIT_NOTICE not in r]
        assert len(answered) == 4
        assert sum(RATE_LIMIT_NOTICE in r for r in replies) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def test_memory_limits_start_no_timer_thread_per_message(make_app, signed_post, monkeypatch):
    # limits' MemoryStorage starts a threading.Timer on a hit once the last has fired (10 ms
    # later): a thread per message under steady traffic. Ours sweeps from one thread.
    app = limited_app(make_app, "1000 per minute")
    assert isinstance(app.extensions["bot"].limiter.storage, SweptMemoryStorage)
    started: list[threading.Thread] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self), start(self)))
    for n in range(4):
        send_all(app, signed_post, [f"@agent help {n}"])
        time.sleep(0.03)  # upstream's timer fires meanwhile
    names = [thread.name for thread in started]
    assert not any(isinstance(thread, threading.Timer) for thread in started), names
    assert names.count("rate-limit-sweeper") <= 1, names


def test_the_sweep_drops_expired_windows_and_the_limit_still_holds():
    storage = SweptMemoryStorage()
    assert storage.acquire_entry("gone", 5, 0)  # expires at once
    assert storage.acquire_entry("kept", 1, 60)
    assert not storage.acquire_entry("kept", 1, 60)
    assert storage.sweep()  # "kept" is still counted
    assert not storage.events["gone"] and storage.events["kept"]
    assert not storage.acquire_entry("kept", 1, 60)
    storage.clear("kept")
    assert not storage.sweep()  # nothing left: the sweeper thread may end
