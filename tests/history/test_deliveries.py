"""The deliveries table stays bounded and keeps reply text only while Twilio may redeliver;
`reset` and `forget` strip it, and a replayed request is still recognised after `forget`
and after its id is pruned (the answers log). Both stores, then end to end."""

from __future__ import annotations

from contextlib import closing

import psycopg2
import pytest

from bot.history import pg_queries, sqlite
from bot.history.records import SECONDS_PER_DAY, Delivery, ExchangeRecord
from bot.history.store import (
    DELIVERY_KEEP_SECONDS,
    PRUNE_BATCH,
    PRUNE_EVERY_SECONDS,
    REPLY_KEEP_SECONDS,
)
from tests.support import ALICE, BOB, budget, db_rows, reply_texts_of, twilio_form

ALICE_DIGITS = ALICE.removeprefix("whatsapp:+")


def handle(store, sid: str, sender: str, reply: str, answered: bool = False) -> None:
    """One inbound message as the handler treats it: claimed, (a question) stored, done."""
    assert store.claim(sid, sender, budget()) == Delivery("new")
    if answered:
        exchange = ExchangeRecord(sender, sender, sid, f"question {sid}", reply, (), 10)
        store.append_exchange(exchange, budget())
    store.complete(sid, reply, budget())


def deliveries(store) -> list[tuple[str, str, str, float]]:
    """(message_sid, conversation, reply, updated_at as unix time) of every delivery."""
    at = "updated_at" if store.backend == "sqlite" else "EXTRACT(EPOCH FROM updated_at)"
    rows = db_rows(store, f"SELECT message_sid, conversation, reply, {at} FROM deliveries")
    return sorted((sid, conv, reply, float(t)) for sid, conv, reply, t in rows)


def add_old_deliveries(store, count: int, at: float) -> None:
    """`count` done deliveries with reply text, last touched at `at`, written past the store."""
    if store.backend == "sqlite":
        db_rows(
            store,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO deliveries (message_sid, conversation, state, reply, updated_at)"
            " SELECT 'SMold' || i, 'someone', 'done', 'old text', ? FROM n",
            (count, at),
        )
    else:
        db_rows(
            store,
            "INSERT INTO deliveries (message_sid, conversation, state, reply, updated_at)"
            " SELECT 'SMold' || i, 'someone', 'done', 'old text', to_timestamp(?)"
            " FROM generate_series(1, ?) AS i",
            (at, count),
        )


def old_rows(store) -> int:
    return sum(sid.startswith("SMold") for sid, *_ in deliveries(store))


def test_eight_weeks_of_traffic_stay_within_the_windows(store, clock):
    per_day = 12
    id_window = per_day * DELIVERY_KEEP_SECONDS / SECONDS_PER_DAY
    sent: list[tuple[str, float, bool]] = []  # (sid, when, answered)
    for n in range(8 * 7 * per_day):
        clock.now += SECONDS_PER_DAY / per_day
        sid, answered = f"SM{n:05d}", n % 3 == 0  # a third are questions, the rest commands
        handle(store, sid, ALICE if n % 2 else BOB, f"reply {n}", answered)
        sent.append((sid, clock.now, answered))
        if n % 7 == 0:
            # Twilio's redelivery, late but inside the text window, gets the same reply.
            clock.now += REPLY_KEEP_SECONDS - 1
            assert store.claim(sid, BOB, budget()) == Delivery("done", f"reply {n}")
        rows, now = deliveries(store), clock.now
        assert len(rows) <= id_window + 1
        assert min(t for *_, t in rows) >= now - DELIVERY_KEEP_SECONDS
        assert [r for r in rows if r[2] and r[3] < now - REPLY_KEEP_SECONDS] == []
    now = clock.now
    # Over three weeks of ids had to go, and every id of the window was kept.
    assert len(sent) > id_window + 3 * 7 * per_day
    kept = [sid for sid, when, _ in sent if when >= now - DELIVERY_KEEP_SECONDS]
    assert [sid for sid, *_ in deliveries(store)] == kept
    recent = next(s for s in sent if now - 20 * SECONDS_PER_DAY < s[1] and not s[2])
    pruned_command = next(s for s in sent if s[1] < now - DELIVERY_KEEP_SECONDS and not s[2])
    pruned_question = next(s for s in sent if s[1] < now - DELIVERY_KEEP_SECONDS and s[2])
    # Past the text window the id alone says "done": nothing is sent again.
    assert store.claim(recent[0], BOB, budget()) == Delivery("done", "")
    # Past the id window, the answers log still knows an answered question, and nothing
    # is stored for it; a command is handled afresh.
    before = deliveries(store)
    assert store.claim(pruned_question[0], BOB, budget()) == Delivery("done", "")
    assert deliveries(store) == before
    assert store.claim(pruned_command[0], BOB, budget()) == Delivery("new")


def test_pruning_runs_at_most_once_a_minute_in_bounded_steps(store, clock):
    store.claim("SM0", BOB, budget())  # a process's first claim prunes: nothing to do yet
    add_old_deliveries(store, 2 * PRUNE_BATCH + 10, clock.now - DELIVERY_KEEP_SECONDS - 1)
    store.claim("SM1", BOB, budget())
    assert old_rows(store) == 2 * PRUNE_BATCH + 10  # not within the same minute
    clock.now += PRUNE_EVERY_SECONDS
    store.claim("SM2", BOB, budget())
    assert old_rows(store) == PRUNE_BATCH + 10  # one bounded step
    store.claim("SM3", BOB, budget())
    assert old_rows(store) == 10  # the step was full: the next claim prunes again
    store.claim("SM4", BOB, budget())
    assert old_rows(store) == 0
    add_old_deliveries(store, 5, clock.now - DELIVERY_KEEP_SECONDS - 1)
    store.claim("SM5", BOB, budget())
    assert old_rows(store) == 5  # that step was not full: the next is a minute away
    clock.now += PRUNE_EVERY_SECONDS
    store.claim("SM6", BOB, budget())
    assert old_rows(store) == 0


def test_reset_blanks_the_reply_text_of_that_conversation_only(store):
    handle(store, "SMa1", ALICE, "what ALICE was told", answered=True)
    handle(store, "SMb1", BOB, "what BOB was told", answered=True)
    store.clear(ALICE, budget())
    assert [(sid, reply) for sid, _, reply, _ in deliveries(store)] == [
        ("SMa1", ""),
        ("SMb1", "what BOB was told"),
    ]
    assert store.claim("SMa1", ALICE, budget()) == Delivery("done", "")


def test_after_forget_the_ids_stay_without_text_or_number(store, clock):
    handle(store, "SMa1", ALICE, "what ALICE was told", answered=True)
    handle(store, "SMa2", ALICE, "Cleared.")  # a command: no answers log row
    handle(store, "SMb1", BOB, "what BOB was told", answered=True)
    store.forget(ALICE)
    rows = deliveries(store)
    assert [sid for sid, *_ in rows] == ["SMa1", "SMa2", "SMb1"]
    assert ALICE_DIGITS not in str(rows)
    forgotten = [r for r in rows if r[0].startswith("SMa")]
    assert all(conv.startswith("forgotten:") and reply == "" for _, conv, reply, _ in forgotten)
    assert rows[2][1:3] == (BOB, "what BOB was told")
    # A replay after forget is recognised: nothing to send, nothing stored.
    assert store.claim("SMa1", ALICE, budget()) == Delivery("done", "")
    assert store.claim("SMa2", ALICE, budget()) == Delivery("done", "")
    assert deliveries(store) == rows
    # Once the ids are pruned, the answers log still recognises the answered one.
    clock.now += DELIVERY_KEEP_SECONDS + 1
    assert store.claim("SMa1", ALICE, budget()) == Delivery("done", "")
    assert deliveries(store) == []


def plan(store, sql: str, params: tuple | dict, seqscan: bool = True) -> str:
    """The query plan; `seqscan=False` prices sequential scans out (is an index usable?)."""
    if store.backend == "sqlite":
        return "\n".join(row[-1] for row in db_rows(store, "EXPLAIN QUERY PLAN " + sql, params))
    with closing(psycopg2.connect(store._db.url)) as conn, conn.cursor() as cur:
        cur.execute(f"SET enable_seqscan = {'on' if seqscan else 'off'}")
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def test_claim_and_pruning_use_indexes(store, clock):
    # A backlog (as on the first start after an upgrade), with the statistics a real
    # database would have: pruning must still walk an index and stop after a batch.
    store.ping()  # PostgreSQL: the schema is migrated on first use
    add_old_deliveries(store, 4 * PRUNE_BATCH, clock.now - DELIVERY_KEEP_SECONDS - 1)
    db_rows(store, "ANALYZE deliveries")
    old, with_text = (clock.now - DELIVERY_KEEP_SECONDS, PRUNE_BATCH), (clock.now, PRUNE_BATCH)
    if store.backend == "sqlite":
        answered = plan(store, sqlite.ANSWERED, ("SM1",))
        # The only cost added to a claim: one primary-key probe of the answers log.
        assert "USING COVERING INDEX sqlite_autoindex_answers_1 (message_sid=?)" in answered
        assert "SCAN" not in answered
        delete = plan(store, sqlite.DELETE_OLD_DELIVERIES, old)
        blank = plan(store, sqlite.BLANK_OLD_REPLIES, with_text)
        full_scan = "SCAN deliveries"
    else:
        args = {"sid": "SM1", "conversation": "a", "owner": "o", "now": 0.0, "stale": 0.0}
        claim = plan(store, pg_queries.CLAIM, args, seqscan=False)
        # The only cost added to a claim: one primary-key probe of the answers log.
        assert claim.count("on answers") == 1
        assert "Index Only Scan using answers_pkey on answers" in claim
        assert "Seq Scan" not in claim
        delete = plan(store, pg_queries.DELETE_OLD_DELIVERIES, old)
        blank = plan(store, pg_queries.BLANK_OLD_REPLIES, with_text)
        full_scan = "Seq Scan"
        assert "Limit" in delete and "Limit" in blank
    assert "deliveries_by_time" in delete and full_scan not in delete
    assert "deliveries_with_reply" in blank and full_scan not in blank


# --- end to end: a captured request replayed after `forget` ------------------------------

TABLES = ("messages", "answers", "usage", "deliveries")


def snapshot(store) -> dict[str, list[str]]:
    return {table: sorted(map(str, db_rows(store, f"SELECT * FROM {table}"))) for table in TABLES}


@pytest.mark.parametrize("way", ["chat", "cli"])
def test_a_request_replayed_after_forget_gets_nothing_and_stores_nothing(
    make_app, mistral, signed_post, backend, way
):
    app = make_app(mistral_api_key="test-mistral-key", mistral_server_url=mistral.url, **backend)
    store, client = app.extensions["bot"].history, app.test_client()
    mistral.reply = "Amara Okafor attended."
    question = twilio_form("@agent who attended the UNEA meeting?")
    (reply,) = reply_texts_of(signed_post(client, question))
    assert reply.startswith("Amara Okafor attended.")
    assert len(mistral.chat_requests) == 1

    if way == "chat":
        assert reply_texts_of(signed_post(client, twilio_form("@agent forget me")))
        assert reply_texts_of(signed_post(client, twilio_form("@agent forget me yes")))
    else:
        result = app.test_cli_runner().invoke(args=["forget", ALICE])
        assert result.exit_code == 0, result.output
    before, model_requests = snapshot(store), len(mistral.requests)
    assert ALICE_DIGITS not in str(before)
    assert before["deliveries"]  # the ids, kept to recognise replays

    # The captured request, byte for byte (same MessageSid, same signature), replayed.
    assert reply_texts_of(signed_post(client, question)) == []
    assert len(mistral.requests) == model_requests
    assert snapshot(store) == before

    # Its id pruned (as a month later), the never-pruned answers log still recognises it.
    db_rows(store, "DELETE FROM deliveries")
    assert reply_texts_of(signed_post(client, question)) == []
    assert len(mistral.requests) == model_requests
    assert snapshot(store) == {**before, "deliveries": []}
