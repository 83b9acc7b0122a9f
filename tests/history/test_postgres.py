"""The PostgreSQL history store against a real server: schema, pool limits and faults."""

from __future__ import annotations

import logging
import socket
import threading
import time

import psycopg2
import pytest

from bot.deadline import Deadline
from bot.errors import HistoryUnavailable
from bot.history.pg_schema import LATEST_VERSION
from bot.history.postgres import RECONNECT_AFTER_SECONDS, PostgresHistoryStore
from bot.history.records import ExchangeRecord
from tests.services import free_port
from tests.services.postgres import run_sql
from tests.support import (
    ALICE,
    BOB,
    PUBLIC_URL,
    WEBHOOK,
    reply_texts_of,
    run_threads,
    sign,
    twilio_form,
)

QUESTION = "@agent who attended the UNEA meeting?"


def wait_for(condition, seconds: float = 5.0) -> bool:
    """Poll `condition` until it holds or `seconds` pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def bot_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("bot")]


def test_schema_is_migrated_once_when_workers_start_together(pg_url):
    stores = [PostgresHistoryStore(pg_url) for _ in range(4)]
    barrier, versions, errors = threading.Barrier(4), [], []

    def start(store: PostgresHistoryStore) -> None:
        barrier.wait()
        try:
            versions.append(store.migrate())
        except HistoryUnavailable as exc:
            errors.append(exc)

    run_threads(start, each=stores)
    assert errors == []
    assert versions == [LATEST_VERSION] * 4
    assert stores[0].migrate() == LATEST_VERSION  # idempotent on a later start too
    # Each migration applied exactly once, in order.
    applied = run_sql(pg_url, "SELECT version FROM schema_version ORDER BY version")
    assert applied == [(v,) for v in range(1, LATEST_VERSION + 1)]
    tables = {t for (t,) in run_sql(pg_url, "SELECT tablename FROM pg_tables")}
    assert {"messages", "deliveries", "notices", "usage", "feedback", "answers"} <= tables
    assert "answer_cache" in tables


def test_waiting_for_a_connection_is_bounded_by_the_deadline(pg_url):
    store = PostgresHistoryStore(pg_url, budget_seconds=14.0, pool_size=2)
    store.migrate()
    blocker = psycopg2.connect(pg_url)
    try:
        # Both pooled connections get stuck behind a lock the test holds.
        blocker.cursor().execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        stuck = [
            threading.Thread(target=store.recent, args=("a", 10, Deadline(10))) for _ in range(2)
        ]
        for thread in stuck:
            thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        assert wait_for(lambda: run_sql(pg_url, waiting)[0][0] == 2)

        started = time.monotonic()
        with pytest.raises(HistoryUnavailable, match="connections busy"):
            store.delivery("SM1", Deadline(0.3))
        assert 0.3 <= time.monotonic() - started < 1.0

        # With time to spare, a caller waits for a connection instead of failing.
        threading.Timer(0.3, blocker.rollback).start()
        assert store.delivery("SM1", Deadline(5)) is None
        for thread in stuck:
            thread.join()
    finally:
        blocker.close()
        store.close()


def test_many_threads_share_a_small_pool(pg_url):
    store = PostgresHistoryStore(pg_url, pool_size=2)
    errors: list[Exception] = []

    def converse(n: int) -> None:
        try:
            for i in range(5):
                exchange = ExchangeRecord(f"c{n}", f"c{n}", f"SM{n}-{i}", "q", "a", (), 100)
                store.append_exchange(exchange, Deadline(5))
        except Exception as exc:  # the test reports any failure, PoolError included
            errors.append(exc)

    run_threads(converse, each=range(12))
    store.close()
    assert errors == []
    assert run_sql(pg_url, "SELECT count(*) FROM messages") == [(120,)]


def test_the_app_starts_and_answers_while_postgres_is_unreachable(make_app, caplog):
    # Nothing listens on this port; the password must never reach a log line or /health.
    url = f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/bot"
    app = make_app(database_url=url)
    client = app.test_client()
    form = twilio_form(QUESTION)
    started = time.monotonic()
    response = client.post(
        WEBHOOK, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + WEBHOOK, form)}
    )
    assert time.monotonic() - started < 5.0
    (reply,) = reply_texts_of(response)
    assert "Amara Okafor" in reply

    started = time.monotonic()
    health = client.get("/health")
    assert time.monotonic() - started < 2.0
    report = health.get_json()
    assert health.status_code == 200
    assert report["status"] == "degraded"
    assert report["components"]["history"] == {
        "backend": "postgresql",
        "ok": False,
        "error": "HistoryUnavailable",
    }
    assert "s3cret" not in health.get_data(as_text=True)
    assert "s3cret" not in caplog.text
    assert "answering without history" in caplog.text
    assert all(r.exc_info is None for r in bot_records(caplog))


def test_a_server_that_hangs_costs_one_connect_timeout_not_the_reply(make_app, signed_post):
    # The kernel completes the TCP handshake but nothing ever answers: each call waits
    # until its deadline or the round-trip bound (statement_timeout + 0.5 s, 1.33 s here).
    with socket.create_server(("127.0.0.1", 0)) as hanging:
        url = f"postgresql://bot@127.0.0.1:{hanging.getsockname()[1]}/bot"
        app = make_app(database_url=url)
        reply, elapsed = send(app, signed_post, QUESTION)
        assert "Amara Okafor" in reply
        assert elapsed < 5.0  # the response budget
        time.sleep(RECONNECT_AFTER_SECONDS)  # past the fail-fast window: the probe connects
        started = time.monotonic()
        report = app.test_client().get("/health").get_json()
        assert time.monotonic() - started < 3.0
        assert report["status"] == "degraded"
        assert report["components"]["history"]["ok"] is False


@pytest.fixture
def pg_app(make_app, mistral, pg_cluster_url):
    """An app whose history lives on the cluster the fault tests stop and restart."""
    return make_app(
        mistral_api_key="k", mistral_server_url=mistral.url, database_url=pg_cluster_url
    )


def send(app, signed_post, body: str, sender: str = ALICE) -> tuple[str, float]:
    started = time.monotonic()
    (reply,) = reply_texts_of(signed_post(app.test_client(), twilio_form(body, sender)))
    return reply, time.monotonic() - started


def stored(url: str, sender: str = ALICE) -> int:
    return run_sql(url, "SELECT count(*) FROM messages WHERE sender = %s", (sender,))[0][0]


def test_a_postgres_restart_between_two_requests_needs_no_app_restart(
    pg_app, postgres_cluster, pg_cluster_url, mistral, signed_post, caplog
):
    send(pg_app, signed_post, "@agent what did we decide about Germany?")
    # As after a burst of traffic: several idle connections in the pool, all of which the
    # restart kills. (Checked out and returned by hand: the pool's own API.)
    pool = pg_app.extensions["bot"].history._db.pool()
    idle = [pool.getconn() for _ in range(3)]
    for conn in idle:
        pool.putconn(conn)
    postgres_cluster.restart()
    reply, _ = send(pg_app, signed_post, "@agent why was that decided?")
    assert reply.startswith("Stub answer to: why was that decided?")
    # The second prompt carried the first exchange: history was read after the restart.
    history = [m["content"] for m in mistral.chat_requests[-1]["messages"][1:-1]]
    assert history[0] == "what did we decide about Germany?"
    assert stored(pg_cluster_url) == 4
    assert "history unavailable" not in caplog.text
    assert pg_app.test_client().get("/health").get_json()["status"] == "ok"


def test_while_postgres_is_down_the_bot_answers_and_recovers_by_itself(
    pg_app, postgres_cluster, pg_cluster_url, mistral, signed_post, caplog
):
    send(pg_app, signed_post, "@agent what did we decide about Germany?")
    postgres_cluster.stop()
    try:
        reply, elapsed = send(pg_app, signed_post, "@agent why was that decided?")
        assert reply.startswith("Stub answer to: why was that decided?")
        assert elapsed < 5.0  # the response budget
        started = time.monotonic()
        report = pg_app.test_client().get("/health").get_json()
        assert time.monotonic() - started < 2.0
        assert report["status"] == "degraded"
        assert report["components"]["history"]["ok"] is False
        assert "answering without history" in caplog.text
        assert all(r.exc_info is None for r in bot_records(caplog))
    finally:
        postgres_cluster.start()
    time.sleep(RECONNECT_AFTER_SECONDS)
    client = pg_app.test_client()
    assert wait_for(lambda: client.get("/health").get_json()["status"] == "ok")
    send(pg_app, signed_post, "@agent who attended the UNEA meeting?")
    assert stored(pg_cluster_url) == 4  # the first and the last exchange
    assert "PostgreSQL reachable again" in caplog.text


def test_a_query_blocked_past_statement_timeout_is_cancelled_before_the_deadline(
    make_app, mistral, pg_url, signed_post, caplog
):
    app = make_app(
        mistral_api_key="k",
        mistral_server_url=mistral.url,
        database_url=pg_url,
        response_timeout_seconds=3.0,
    )
    store = app.extensions["bot"].history
    assert store._db.statement_timeout_ms == 500
    blocker = psycopg2.connect(pg_url)
    try:
        blocker.cursor().execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        reply, elapsed = send(app, signed_post, "@agent what did we decide about Germany?")
    finally:
        blocker.close()
    assert reply.startswith("Stub answer to: what did we decide about Germany?")
    assert elapsed < 3.0
    assert "canceling statement due to statement timeout" in caplog.text
    assert all(r.exc_info is None for r in bot_records(caplog))
    # The cancelled connections went back to the pool in working order.
    send(app, signed_post, "@agent why was that decided?", sender=BOB)
    assert stored(pg_url, BOB) == 2


def test_a_statement_is_one_round_trip_and_its_parts_succeed_together(pg_url):
    # rows() sends no BEGIN or COMMIT of its own: the query is its own implicit transaction
    # (a separate BEGIN would start the transaction before the statement).
    store = PostgresHistoryStore(pg_url)
    db = store._db
    try:
        assert db.rows(Deadline(5), "SELECT now() = statement_timestamp()", ()) == [(True,)]
        db.rows(Deadline(5), "CREATE TABLE IF NOT EXISTS trip (x int PRIMARY KEY)", ())
        with pytest.raises(HistoryUnavailable):
            db.rows(Deadline(5), "INSERT INTO trip VALUES (1); INSERT INTO trip VALUES (1)", ())
        assert db.rows(Deadline(5), "SELECT count(*) FROM trip", ()) == [(0,)]
        # A deadline shorter than statement_timeout still cancels the statement in time.
        with pytest.raises(HistoryUnavailable):
            db.rows(Deadline(0.3), "SELECT pg_sleep(2)", ())
        assert db.rows(Deadline(5), "SELECT 1", ()) == [(1,)]  # the session is usable
    finally:
        store.close()
