"""`forget me` (chat, confirmed) and `flask forget SENDER` remove everything of a sender, on
the SQLite and the PostgreSQL history store, checked in the databases themselves."""

from __future__ import annotations

import pytest

from bot.chat.runner import FORGET_CONFIRM_SECONDS
from bot.texts import FORGET_ASK, FORGET_DONE
from tests.fakes.history import DownHistory
from tests.support import ALICE, BOB, TeamBot, budget, db_rows, reply_texts_of, twilio_form

# Every table of the history store.
TABLES = ("messages", "deliveries", "notices", "usage", "feedback", "answers", "answer_cache")
ALICE_DIGITS = ALICE.removeprefix("whatsapp:+")
ASK = FORGET_ASK.format(trigger="@agent", minutes=FORGET_CONFIRM_SECONDS // 60)


def rows_naming(store, needle: str) -> dict[str, list[tuple]]:
    """Per table, every row with `needle` in any column."""
    found = {}
    for table in TABLES:
        rows = [row for row in db_rows(store, f"SELECT * FROM {table}") if needle in str(row)]
        if rows:
            found[table] = rows
    return found


def send(app, signed_post, body: str, sender: str) -> list[str]:
    return reply_texts_of(signed_post(app.test_client(), twilio_form(body, sender)))


def traffic(app, signed_post) -> None:
    """ALICE and BOB each leave turns, deliveries, a notice, feedback, a rating and a cached
    answer behind."""
    for body, sender in [
        ("@agent who attended the UNEA meeting?", ALICE),  # a first turn: cached, by ALICE
        ("@agent feedback please cite the dates", ALICE),
        ("👍", ALICE),
        ("hello?", ALICE),  # no mention: the daily hint, remembered as a notice
        ("@agent what did we decide about Germany?", BOB),
        ("@agent feedback more detail please", BOB),
        ("good", BOB),
        ("hi", BOB),
    ]:
        send(app, signed_post, body, sender)


@pytest.mark.parametrize("way", ["chat", "cli"])
def test_forget_removes_everything_of_the_sender_and_nothing_of_others(
    make_app, signed_post, backend, way
):
    app = make_app(**backend)
    store = app.extensions["bot"].history
    traffic(app, signed_post)
    assert set(rows_naming(store, ALICE_DIGITS)) == set(TABLES)  # ALICE is everywhere
    bob_before = rows_naming(store, BOB.removeprefix("whatsapp:+"))
    questions_before = db_rows(store, "SELECT SUM(questions) FROM usage")
    stats_before = store.stats(7, 5, budget())

    if way == "chat":
        assert send(app, signed_post, "@agent forget me", ALICE) == [ASK]
        assert rows_naming(store, ALICE_DIGITS)["messages"]  # nothing deleted yet
        assert send(app, signed_post, "@agent forget me yes", ALICE) == [FORGET_DONE]
    else:
        result = app.test_cli_runner().invoke(args=["forget", ALICE])
        assert result.exit_code == 0, result.output

    assert rows_naming(store, ALICE_DIGITS) == {}
    # What ALICE asked is gone from the answers log too; only BOB's question is left.
    assert db_rows(store, "SELECT question FROM answers WHERE question <> ''") == [
        ("what did we decide about germany",)
    ]
    assert rows_naming(store, BOB.removeprefix("whatsapp:+")) == bob_before
    # The team's counts stay, anonymous.
    assert db_rows(store, "SELECT SUM(questions) FROM usage") == questions_before
    after = store.stats(7, 5, budget())
    assert (after.days, after.active_senders, after.answers) == (
        stats_before.days,
        stats_before.active_senders,
        stats_before.answers,
    )
    assert (after.feedback, after.thumbs_up) == (2, 1)  # BOB's feedback and rating


def test_forget_me_needs_a_fresh_confirmation(store):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent who attended the UNEA meeting?")
    # Confirming without having asked only asks.
    assert bot.say(ALICE, "@agent forget me yes") == ASK
    store.clock.now += FORGET_CONFIRM_SECONDS + 1
    assert bot.say(ALICE, "@agent forget me yes") == ASK  # too late: asks again
    assert rows_naming(store, ALICE_DIGITS)["messages"]
    # Someone else's confirmation does not count for ALICE.
    assert bot.say(BOB, "@agent forget me") == ASK
    assert bot.say(ALICE, "@agent forget me yes") == FORGET_DONE
    assert rows_naming(store, ALICE_DIGITS) == {}
    # Once done, a repeated confirmation deletes nothing more and only asks again.
    assert bot.say(ALICE, "@agent forget me yes") == ASK


def test_forget_me_is_not_a_question_about_forgetting(store):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent forget me not: what did the team decide?")
    assert bot.answerer.calls == ["forget me not: what did the team decide?"]


def test_without_the_history_store_forget_me_says_memory_is_down():
    from bot.chat.runner import MEMORY_DOWN

    bot = TeamBot(DownHistory())
    assert bot.say(ALICE, "@agent forget me") == MEMORY_DOWN
    assert bot.say(ALICE, "@agent forget me yes") == MEMORY_DOWN
