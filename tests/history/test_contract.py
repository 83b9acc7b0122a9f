"""The HistoryStore contract: one suite, run against the SQLite and the PostgreSQL store."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from bot.history.records import (
    SECONDS_PER_DAY,
    AnswerCounts,
    CachedAnswer,
    CacheEntry,
    DayUsage,
    Delivery,
    ExchangeRecord,
    SenderUsage,
    utc_day,
)
from bot.history.store import STALE_CLAIM_SECONDS
from tests.support import budget, db_rows, run_threads


def exchange(store, conversation, n, keep=100, sender=None):
    store.append_exchange(
        ExchangeRecord(
            conversation,
            sender or conversation,
            f"SM{conversation}{n}",
            f"question {n}",
            f"answer {n}",
            (f"doc {n}",),
            keep,
        ),
        budget(),
    )


def asked(store, sender, sid, question, keep=100, how=()):
    """`sender` asks `question` in their own conversation; the answer is "x", made `how`
    (backend, fallback reason, milliseconds; unknown when left out)."""
    record = ExchangeRecord(sender, sender, sid, question, "x", (), keep, *how)
    store.append_exchange(record, budget())


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


def test_each_exchange_keeps_the_collections_its_answer_could_draw_from(store):
    """`recent` returns them with each turn; `sources` shows the latest answer its reader
    may see (collections, bot/readers.py), skipping answers made for wider readers."""
    for n, readers in ((1, "general"), (2, "board,general"), (3, "")):
        store.append_exchange(
            replace(
                ExchangeRecord("g", f"s{n}", f"SMg{n}", f"q {n}", f"a {n}", (f"doc {n}",), 100),
                readers=readers,
            ),
            budget(),
        )
    turns = store.recent("g", 10, budget())
    assert [(t.sender, t.readers) for t in turns if t.role == "assistant"] == [
        ("s1", "general"),
        ("s2", "board,general"),
        ("s3", ""),
    ]
    assert store.last_sources("g", budget()) == ("doc 3",)
    assert store.last_sources("g", budget(), frozenset({"general", "board"})) == ("doc 2",)
    assert store.last_sources("g", budget(), frozenset({"general"})) == ("doc 1",)
    assert store.last_sources("g", budget(), frozenset({"hr"})) is None


def test_clear_and_forget(store):
    exchange(store, "a", 1)
    exchange(store, "b", 1)
    assert store.claim("SMx", "a", budget()).state == "new"
    assert store.clear("a", budget()) == 2
    assert store.recent("a", 10, budget()) == []
    assert store.forget("b") == 2
    assert store.recent("b", 10, budget()) == []
    assert store.forget("a") == 0  # its delivery stays: the id only (see test_deliveries.py)


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

    run_threads(claim, 8)
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
    assert store.usage("a", budget()) == SenderUsage(questions=3, today=1, active_days=2, week=3)
    assert store.usage("b", budget()) == SenderUsage(questions=1, today=1, active_days=1, week=1)
    assert store.usage("nobody", budget()) == SenderUsage(0, 0, 0, 0)
    clock.now += 6 * SECONDS_PER_DAY  # the first day has left the 7-day window
    assert store.usage("a", budget()) == SenderUsage(questions=3, today=0, active_days=2, week=1)


def test_stats_per_day_active_senders_and_most_asked(store, clock):
    day_one = clock.now
    for n, (sender, question) in enumerate(
        [("a", "Who attended?"), ("b", "who  attended"), ("c", "What budget?")]
    ):
        asked(store, sender, f"SM{n}", question)
    clock.now += SECONDS_PER_DAY
    asked(store, "a", "SM9", "WHO ATTENDED?!")
    store.add_feedback("b", "b", "great bot", budget())

    stats = store.stats(7, 5, budget())
    days = [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (day_one, clock.now)]
    # Every day of the window, oldest first, the quiet ones with zeros.
    earlier = [utc_day(day_one - n * SECONDS_PER_DAY) for n in range(5, 0, -1)]
    assert stats.days == (
        *(DayUsage(day, 0, 0) for day in earlier),
        DayUsage(days[0], 3, 3),
        DayUsage(days[1], 1, 1),
    )
    assert stats.questions == 4
    assert stats.active_senders == 3
    assert stats.top_questions == (("who attended", 3), ("what budget", 1))
    assert stats.feedback == 1
    # A one-day window sees today only.
    today = store.stats(1, 1, budget())
    assert (today.days, today.active_senders) == ((DayUsage(days[1], 1, 1),), 1)
    assert today.top_questions == (("who attended", 1),)


def test_forget_keeps_the_counts_but_not_the_number(store):
    for sender in ("a", "b"):
        asked(store, sender, f"SM{sender}", "question 1", how=("mistral", "", 800.0))
    store.add_feedback("a", "a", "please add the March notes", budget())
    store.add_feedback("b", "b", "more please", budget())
    before = store.stats(7, 5, budget())
    assert store.forget("a") == 3  # two turns and the feedback
    after = store.stats(7, 5, budget())
    assert (after.days, after.active_senders, after.answers, after.median_answer_ms) == (
        before.days,
        before.active_senders,
        before.answers,
        before.median_answer_ms,
    )
    assert store.usage("a", budget()) == SenderUsage(0, 0, 0, 0)
    # Their feedback is deleted; another sender's stays.
    assert [(f.sender, f.text) for f in store.recent_feedback(10, budget())] == [
        ("b", "more please")
    ]
    assert after.feedback == 1
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


def test_the_answers_log_counts_how_answers_were_made_and_their_median_time(store, clock):
    records = [
        ("mistral", "", 900.0),
        ("mistral", "", 1500.0),
        ("extractive", "timeout", 8000.0),
        ("cache", "", 12.0),
        ("extractive", "", 20.0),
        ("mistral", "", 1100.0),
    ]
    for n, record in enumerate(records):
        asked(store, "a", f"SM{n}", f"q{n}", keep=3, how=record)
    # A redelivery stores, logs and counts nothing, even after its turns were pruned.
    asked(store, "a", "SM0", "q0", keep=3, how=records[2])
    assert [t.text for t in store.recent("a", 100, budget())] == ["x", "q5", "x"]
    # An exchange without a record of how it was made counts, with no kind and no time.
    asked(store, "a", "SMraw", "q", keep=3)
    stats = store.stats(7, 5, budget())
    assert stats.questions == 7
    assert stats.answers == AnswerCounts(model=3, fallback=1, excerpts=1, cache=1)
    assert stats.median_answer_ms == 1000.0  # (900 + 1100) / 2, over the six timed answers
    # The log is not pruned with the conversation (kept to 3 messages above).
    assert len(store.recent("a", 100, budget())) == 3
    assert stats.top_questions[:2] == (("q", 1), ("q0", 1))
    clock.now += 7 * SECONDS_PER_DAY
    later = store.stats(7, 5, budget())
    assert (later.answers, later.median_answer_ms, later.top_questions) == (
        AnswerCounts(),
        None,
        (),
    )


def test_last_answer_is_the_senders_latest_exchange(store, clock):
    assert store.last_answer("a", budget()) is None
    exchange(store, "a", 1)
    clock.now += 5
    exchange(store, "a", 2)
    exchange(store, "b", 3)
    last = store.last_answer("a", budget())
    assert (last.message_sid, last.question, last.answer) == ("SMa2", "question 2", "answer 2")
    assert last.answered_at == clock.now
    assert store.last_answer("a", budget(), within_seconds=60) == last
    clock.now += 61
    assert store.last_answer("a", budget(), within_seconds=60) is None
    assert store.last_answer("a", budget()) == last


def test_feedback_names_the_exchange_and_a_rating_replaces_the_earlier_one(store, clock):
    exchange(store, "a", 1)
    about = store.last_answer("a", budget())
    store.add_feedback("a", "a", "👍", budget(), rating="up", about=about)
    clock.now += 1
    store.add_feedback("a", "a", "👎", budget(), rating="down", about=about)  # changed mind
    store.add_feedback("a", "a", "cite the date please", budget(), about=about)
    store.add_feedback("b", "b", "no answer yet", budget())
    entries = store.recent_feedback(10, budget())
    assert [(f.sender, f.text, f.rating) for f in entries] == [
        ("b", "no answer yet", ""),
        ("a", "cite the date please", ""),
        ("a", "👎", "down"),
    ]
    assert (entries[1].message_sid, entries[1].question, entries[1].answer) == (
        "SMa1",
        "question 1",
        "answer 1",
    )
    assert entries[0].message_sid == entries[0].question == ""
    stats = store.stats(7, 5, budget())
    assert (stats.feedback, stats.thumbs_up, stats.thumbs_down) == (3, 0, 1)


def test_a_confirmation_counts_once_and_only_while_fresh(store, clock):
    assert not store.confirm("a", "forget", 600, budget())  # never asked
    store.request_confirmation("a", "forget", budget())
    assert not store.confirm("b", "forget", 600, budget())
    assert not store.confirm("a", "other", 600, budget())
    assert store.confirm("a", "forget", 600, budget())
    assert not store.confirm("a", "forget", 600, budget())  # used up
    store.request_confirmation("a", "forget", budget())
    clock.now += 601
    assert not store.confirm("a", "forget", 600, budget())


def test_answer_cache_by_question_version_and_age(store, clock):
    answer = CachedAnswer("Amara and Jonas.", ("UNEA prep",))
    assert store.cached_answer("who attended", "v1", 60, budget()) is None
    store.cache_answer("who attended", "v1", answer, "a", 60, budget())
    assert store.cached_answer("who attended", "v1", 60, budget()) == answer
    assert store.cached_answer("who attended", "v2", 60, budget()) is None
    assert store.cached_answer("who else", "v1", 60, budget()) is None
    clock.now += 61
    assert store.cached_answer("who attended", "v1", 60, budget()) is None
    # A newer answer replaces the entry; older versions are swept meanwhile.
    store.cache_answer("who attended", "v1", answer, "a", 60, budget())
    newer = CachedAnswer("Amara.", ())
    store.cache_answer("who attended", "v2", newer, "b", 60, budget())
    assert store.cached_answer("who attended", "v2", 60, budget()) == newer
    assert store.cached_answer("who attended", "v1", 600, budget()) is None


def test_forget_deletes_the_cache_entries_a_sender_created(store):
    store.cache_answer("q1", "v", CachedAnswer("x", ()), "a", 60, budget())
    store.cache_answer("q2", "v", CachedAnswer("y", ()), "b", 60, budget())
    assert store.forget("a") == 1
    assert store.cached_answer("q1", "v", 60, budget()) is None
    assert store.cached_answer("q2", "v", 60, budget()) == CachedAnswer("y", ())


def test_an_exchange_completes_its_delivery_and_caches_its_answer_in_the_same_write(store):
    # What a message settles after its claim is one transaction (issue 19): the turns, the
    # delivery's reply and the cache entry; a redelivered exchange still completes.
    assert store.claim("SM9", "a", budget()).state == "new"
    cached = CachedAnswer("Amara and Jonas.", ("UNEA prep",))
    record = ExchangeRecord(
        "a", "a", "SM9", "who attended?", "Amara and Jonas.", ("UNEA prep",), 10,
        "mistral", reply="Amara and Jonas.", cache=CacheEntry("who attended?", "v1", cached, 60),
    )  # fmt: skip
    store.append_exchange(record, budget())
    assert store.delivery("SM9", budget()) == Delivery("done", "Amara and Jonas.")
    assert store.cached_answer("who attended?", "v1", 60, budget()) == cached
    assert [t.text for t in store.recent("a", 10, budget())] == [
        "who attended?",
        "Amara and Jonas.",
    ]
    assert store.claim("SM9", "a", budget()) == Delivery("done", "Amara and Jonas.")


def test_filing_an_answer_drops_expired_entries(store, clock):
    old = CachedAnswer("old", ())
    store.cache_answer("q1", "v", old, "a", 60, budget())
    clock.now += 61
    store.cache_answer("q2", "v", CachedAnswer("new", ()), "b", 60, budget())
    assert [q for (q,) in db_rows(store, "SELECT question FROM answer_cache")] == ["q2"]
