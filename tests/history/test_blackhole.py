"""PostgreSQL behind a black-holed network (a vanished host): history degrades, replies do not.

The relay stops forwarding without refusing or closing anything, so only a client-side
bound ends a wait: the server's statement_timeout never hears the query, and the kernel
keeps acknowledging the relay's end of the socket.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.postgres import RECONNECT_AFTER_SECONDS, PostgresHistoryStore
from tests.services.postgres import run_sql
from tests.services.relay import BlackHoleRelay
from tests.support import reply_texts_of, twilio_form

BUDGET = 3.0  # response_timeout_seconds
# Time a reply may take past its budget: rendering after the last deadline check, on a
# 2-core machine shared with other test runs.
MARGIN = 0.5
REQUESTS = 10
RECOVERY_SECONDS = 10.0
# A request still running this long after the outage began is reported as blocked (the
# relay is then resumed, so even a request stuck on a dead socket ends and the run goes on).
GIVE_UP_SECONDS = BUDGET + 7.0
QUESTION = "@agent who attended the UNEA meeting?"
ANSWER = "Amara Okafor"  # the extractive answer from the sample notes


@pytest.fixture
def relay(postgres) -> Iterator[BlackHoleRelay]:
    """A relay in front of the session's PostgreSQL server."""
    target = urlsplit(postgres.url)
    relay = BlackHoleRelay(target.hostname or "127.0.0.1", target.port or 5432)
    yield relay
    relay.close()


def via(relay: BlackHoleRelay, url: str) -> str:
    """`url` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{relay.address}" if user else relay.address))


def in_parallel(calls: list[Callable[[], object]], give_up: float) -> list[tuple[float, object]]:
    """Start every call at once; per call (seconds taken, result or exception), the seconds
    being infinite for a call still blocked after `give_up` s."""
    outcomes: list[tuple[float, object]] = [(math.inf, None)] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            result = call()
        except Exception as exc:  # reported by the test, assertion errors included
            result = exc
        outcomes[index] = (time.monotonic() - started, result)

    threads = [
        threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + give_up
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return list(outcomes)


def turns_stored(url: str, message_sid: str) -> int:
    """Turns in the messages table for one MessageSid (2 once an exchange is stored)."""
    sql = "SELECT count(*) FROM messages WHERE message_sid = %s"
    return run_sql(url, sql, (message_sid,))[0][0]


def sender(n: int) -> str:
    return f"whatsapp:+4477009{n:05d}"


def test_a_blackholed_database_costs_answers_their_history_never_their_reply(
    make_app, signed_post, pg_url, relay, caplog
):
    app = make_app(database_url=via(relay, pg_url), response_timeout_seconds=BUDGET)
    sent: dict[str, str] = {}  # sender -> MessageSid of its last question

    def ask(who: str) -> str:
        form = twilio_form(QUESTION, who)
        sent[who] = form["MessageSid"]
        (reply,) = reply_texts_of(signed_post(app.test_client(), form))  # a 200 with TwiML
        return reply

    assert ANSWER in ask(sender(0))
    assert turns_stored(pg_url, sent[sender(0)]) == 2

    relay.blackhole()
    try:
        calls = [lambda n=n: ask(sender(n)) for n in range(1, REQUESTS + 1)]
        outcomes = in_parallel(calls, give_up=GIVE_UP_SECONDS)
    finally:
        relay.resume()
        resumed = time.monotonic()
    times = [seconds for seconds, _ in outcomes]
    print(
        f"\n{REQUESTS} replies during the outage ({BUDGET:.0f} s budget): "
        f"max {max(times):.2f} s, median {statistics.median(times):.2f} s"
    )
    assert max(times) < BUDGET + MARGIN, f"reply times during the outage: {times}"
    for _, reply in outcomes:
        assert isinstance(reply, str) and ANSWER in reply, reply  # answered, without history
    assert "answering without history" in caplog.text

    # Back to normal (the exchange stored) within seconds of the network's return.
    n = REQUESTS + 1
    while True:
        started = time.monotonic()
        reply = ask(sender(n))
        assert time.monotonic() - started < BUDGET + MARGIN
        assert ANSWER in reply
        if turns_stored(pg_url, sent[sender(n)]) == 2:
            break
        assert time.monotonic() - resumed < RECOVERY_SECONDS, "history still unavailable"
        n += 1
        time.sleep(0.1)
    recovery = time.monotonic() - resumed
    print(f"first normal reply {recovery:.2f} s after the network came back")
    assert recovery < RECOVERY_SECONDS


def test_store_calls_during_the_outage_fail_within_their_deadline(pg_url, relay):
    store = PostgresHistoryStore(via(relay, pg_url), budget_seconds=BUDGET, pool_size=3)
    store.migrate()
    # As after some traffic: an idle pooled connection, which the outage leaves on a dead path.
    store.claim("SM-warm", "c", Deadline(2))
    assert store.recent("c", 10, Deadline(2)) == []

    def check(name: str, call: Callable[[Deadline], object], seconds: float) -> None:
        ((elapsed, outcome),) = in_parallel([lambda: call(Deadline(seconds))], seconds + 5)
        print(f"{name} with a {seconds} s deadline: {type(outcome).__name__} in {elapsed:.2f} s")
        assert isinstance(outcome, HistoryUnavailable), outcome
        assert elapsed < seconds + 0.2

    relay.blackhole()
    try:
        # More callers than connections, all stuck (on the pooled connection, or connecting):
        # none waits for a slot past its deadline, nor behind the stuck ones.
        calls = [
            (lambda i=i: store.claim(f"SM-{i}", "c", Deadline(2.0)))
            if i % 2
            else (lambda: store.recent("c", 10, Deadline(2.0)))
            for i in range(8)
        ]
        outcomes = in_parallel(calls, give_up=7.0)
        print("\n8 callers on 3 connections:", ", ".join(f"{s:.2f} s" for s, _ in outcomes))
        for elapsed, outcome in outcomes:
            assert isinstance(outcome, HistoryUnavailable), outcome
            assert elapsed < 2.0 + 0.2
        check("recent (known unreachable)", lambda d: store.recent("c", 10, d), 2.0)
        time.sleep(RECONNECT_AFTER_SECONDS)  # past the fail-fast window: one call probes
        check("claim on a new connection", lambda d: store.claim("SM-8", "c", d), 2.0)
        time.sleep(RECONNECT_AFTER_SECONDS)
        check("recent with little time left", lambda d: store.recent("c", 10, d), 0.3)
    finally:
        relay.resume()
        resumed = time.monotonic()

    def works() -> bool:
        try:
            store.claim("SM-3", "c", Deadline(2))
            return True
        except HistoryUnavailable:
            time.sleep(0.1)
            return False

    try:
        while not works():
            assert time.monotonic() - resumed < RECOVERY_SECONDS, "the store did not recover"
        print(f"store usable {time.monotonic() - resumed:.2f} s after the network came back")
    finally:
        store.close()
