"""The HistoryStore contract: one suite, run against the SQLite and the PostgreSQL store."""

from __future__ import annotations

import threading
import time

import pytest

from bot.deadline import Deadline
from bot.history.sqlite import STALE_CLAIM_SECONDS, SqliteHistoryStore
from bot.history.store import SECONDS_PER_DAY, DayUsage, SenderUsage


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path, clock):
    if request.param == "postgres":
        from bot.history.postgres import PostgresHistoryStore

        store = PostgresHistoryStore(request.getfixturevalue("pg_url"), 5.0, clock=clock)
    else:
        store = SqliteHistoryStore(str(tmp_path / "history.sqlite3"), clock=clock)
    yield store
    store.close()


def budget() -> Deadline:
    return Deadline(5)


def exchange(store, conversation, n, keep=100, sender=None):
    store.append_exchange(
        conversation,
        sender or conversation,
        f"SM{conversation}{n}",
        f"question {n}",
        f"answer {n}",
        (f"doc {n}",),
        keep,
        budget(),
    )


def test_recent_turns_in_order(store):
    for n in range(3):
        exchange(store, "a", n)
    turns = store.recent("a", 10, budget())
    assert [(t.role, t.text) for t in turns] == [
        ("user", "question 0"),
        ("assistant", "answer 0"),
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "answer 2"),
    ]
    assert [t.text for t in store.recent("a", 2, budget())] == ["question 2", "answer 2"]
    assert store.recent("a", 0, budget()) == []


def test_pruned_to_keep_messages_per_conversation(store):
    for n in range(6):
        exchange(store, "a", n, keep=4)
        exchange(store, "b", n, keep=100)
    assert [t.text for t in store.recent("a", 100, budget())] == [
        "question 4",
        "answer 4",
        "question 5",
        "answer 5",
    ]
    assert len(store.recent("b", 100, budget())) == 12


def test_conversations_are_isolated(store):
    exchange(store, "a", 1)
    exchange(store, "b", 2)
    assert {t.text for t in store.recent("a", 10, budget())} == {"question 1", "answer 1"}
    assert store.last_sources("a", budget()) == ("doc 1",)
    assert store.last_sources("c", budget()) is None


def test_clear_and_forget(store):
    exchange(store, "a", 1)
    exchange(store, "b", 1)
    assert store.claim("SMx", "a", budget()).state == "new"
    assert store.clear("a", budget()) == 2
    assert store.recent("a", 10, budget()) == []
    assert store.forget("b") == 2
    assert store.recent("b", 10, budget()) == []
    assert store.forget("a") == 1  # the delivery, which holds reply text


def test_message_ids_are_unique(store):
    exchange(store, "a", 1)
    exchange(store, "a", 1)
    assert len(store.recent("a", 10, budget())) == 2


def test_claim_complete_and_redelivery(store):
    assert store.claim("SM1", "a", budget()).state == "new"
    assert store.claim("SM1", "a", budget()).state == "pending"
    store.complete("SM1", "the reply", budget())
    again = store.claim("SM1", "a", budget())
    assert (again.state, again.reply) == ("done", "the reply")


def test_stale_claim_is_taken_over_and_release_frees_it(store, clock):
    store.claim("SM1", "a", budget())
    clock.now += STALE_CLAIM_SECONDS + 1
    assert store.claim("SM1", "a", budget()).state == "new"
    store.release("SM1")
    assert store.delivery("SM1", budget()) is None


def test_exactly_one_concurrent_claim_wins(store):
    states, barrier = [], threading.Barrier(8)

    def claim():
        barrier.wait()
        states.append(store.claim("SMrace", "a", budget()).state)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(states) == ["new"] + ["pending"] * 7


def test_notice_due_once_per_period(store, clock):
    assert store.notice_due("a", "hint", 3600, budget())
    assert not store.notice_due("a", "hint", 3600, budget())
    assert store.notice_due("b", "hint", 3600, budget())
    clock.now += 3601
    assert store.notice_due("a", "hint", 3600, budget())


def test_usage_counts_each_answered_question_once(store, clock):
    exchange(store, "a", 1)
    exchange(store, "a", 1)  # a redelivery stores nothing and counts nothing
    exchange(store, "a", 2)
    clock.now += SECONDS_PER_DAY
    exchange(store, "a", 3)
    exchange(store, "b", 1)
    assert store.usage("a", budget()) == SenderUsage(questions=3, today=1, active_days=2)
    assert store.usage("b", budget()) == SenderUsage(questions=1, today=1, active_days=1)
    assert store.usage("nobody", budget()) == SenderUsage(0, 0, 0)


def test_stats_per_day_active_senders_and_most_asked(store, clock):
    day_one = clock.now
    for n, (sender, question) in enumerate(
        [("a", "Who attended?"), ("b", "who  attended"), ("c", "What budget?")]
    ):
        store.append_exchange(sender, sender, f"SM{n}", question, "x", (), 100, budget())
    clock.now += SECONDS_PER_DAY
    store.append_exchange("a", "a", "SM9", "WHO ATTENDED?!", "x", (), 100, budget())
    store.add_feedback("b", "b", "great bot", budget())

    stats = store.stats(7, 5, budget())
    days = [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (day_one, clock.now)]
    assert stats.days == (DayUsage(days[0], 3, 3), DayUsage(days[1], 1, 1))
    assert stats.active_senders == 3
    assert stats.top_questions == (("who attended", 3), ("what budget", 1))
    assert stats.feedback == 1
    # A one-day window sees today only.
    today = store.stats(1, 1, budget())
    assert (today.days, today.active_senders) == ((DayUsage(days[1], 1, 1),), 1)
    assert today.top_questions == (("who attended", 1),)


def test_forget_keeps_the_counts_but_not_the_number(store):
    exchange(store, "a", 1)
    exchange(store, "b", 1)
    store.add_feedback("a", "a", "please add the March notes", budget())
    before = store.stats(7, 5, budget())
    store.forget("a")
    after = store.stats(7, 5, budget())
    assert (after.days, after.active_senders, after.feedback) == (
        before.days,
        before.active_senders,
        before.feedback,
    )
    assert store.usage("a", budget()) == SenderUsage(0, 0, 0)
    (kept,) = store.recent_feedback(10, budget())
    assert kept.text == "please add the March notes"
    assert kept.sender != "a" and kept.sender.startswith("forgotten:")
    # What the forgotten sender asked is gone from the most asked questions too.
    assert after.top_questions == (("question 1", 1),)


def test_feedback_newest_first(store, clock):
    store.add_feedback("a", "a", "first", budget())
    clock.now += 1
    store.add_feedback("b", "b", "second", budget())
    assert [(f.sender, f.text) for f in store.recent_feedback(10, budget())] == [
        ("b", "second"),
        ("a", "first"),
    ]
    assert [f.text for f in store.recent_feedback(1, budget())] == ["second"]
