"""Feedback, quick ratings and `stats` (chat and CLI) after a scripted week of traffic, on
the SQLite and the PostgreSQL history store, with clocks the test controls."""

from __future__ import annotations

import calendar
import json

import pytest

from bot.chat.runner import QUICK_FEEDBACK_SECONDS
from bot.history.records import SECONDS_PER_DAY, AnswerCounts, DayUsage
from bot.texts import FEEDBACK_THANKS, MENTION_HINT, NOTHING_TO_RATE, RATED
from tests.fakes.clock import Clock
from tests.fakes.history import DownHistory
from tests.support import ALICE, BOB, CAROL, DAVE, TeamBot, budget, db_rows

# Monday 2 March 2026, 09:00 UTC: day 0 of the scripted week; day 6 is "today".
WEEK_START = calendar.timegm((2026, 3, 2, 9, 0, 0))
MODEL = ("mistral", "", 1000.0)


def model(ms: float) -> tuple[str, str, float]:
    return ("mistral", "", ms)


@pytest.fixture
def clock() -> Clock:
    return Clock(WEEK_START)


def at(clock: Clock, day: int, hour: int = 9, minute: int = 0) -> None:
    clock.now = WEEK_START + day * SECONDS_PER_DAY + (hour - 9) * 3600 + minute * 60


def test_feedback_is_stored_with_the_sender_and_the_answer_it_is_about(store, clock):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent who attended the UNEA meeting?", MODEL)
    bot.say(BOB, "@agent what did we decide about Germany?", MODEL)
    clock.now += 120
    assert bot.say(ALICE, "@agent feedback please cite the date") == FEEDBACK_THANKS

    (entry,) = store.recent_feedback(10, budget())
    assert (entry.sender, entry.text, entry.rating) == (ALICE, "please cite the date", "")
    assert entry.question == "who attended the UNEA meeting?"
    assert entry.answer == "answer 1: who attended the UNEA meeting?"
    assert entry.created_at == clock.now
    # Stored in the database with the MessageSid of the exchange it refers to.
    rows = db_rows(store, "SELECT sender, message_sid FROM feedback")
    assert rows == [(ALICE, "SM" + "1".zfill(32))]


def test_feedback_without_text_explains_itself_and_stores_nothing(store):
    bot = TeamBot(store)
    assert "feedback the answers are too long" in bot.say(ALICE, "@agent feedback")
    assert store.recent_feedback(10, budget()) == []


def test_feedback_before_any_answer_is_kept_without_a_link(store):
    bot = TeamBot(store)
    assert bot.say(ALICE, "@agent feedback: can you read PDFs?") == FEEDBACK_THANKS
    (entry,) = store.recent_feedback(10, budget())
    assert (entry.text, entry.question, entry.message_sid) == ("can you read PDFs?", "", "")


@pytest.mark.parametrize(
    ("body", "rating"),
    [("@agent 👍", "up"), ("👍🏽", "up"), ("good", "up"), ("@agent bad!", "down"), ("👎", "down")],
)
def test_quick_feedback_right_after_an_answer_rates_it(store, clock, body, rating):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent who attended the UNEA meeting?", MODEL)
    clock.now += 60
    assert bot.say(ALICE, body) == RATED[rating].format(trigger="@agent")
    (entry,) = store.recent_feedback(10, budget())
    assert (entry.rating, entry.question) == (rating, "who attended the UNEA meeting?")
    assert bot.answerer.calls == ["who attended the UNEA meeting?"]  # not a question


def test_a_second_rating_of_the_same_answer_replaces_the_first(store, clock):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent who attended the UNEA meeting?", MODEL)
    bot.say(ALICE, "👍")
    bot.say(ALICE, "👎")
    stats = store.stats(7, 5, budget())
    assert (stats.feedback, stats.thumbs_up, stats.thumbs_down) == (1, 0, 1)


def test_quick_feedback_long_after_an_answer_is_not_feedback(store, clock):
    bot = TeamBot(store)
    bot.say(ALICE, "@agent who attended the UNEA meeting?", MODEL)
    clock.now += QUICK_FEEDBACK_SECONDS + 1
    # Without the trigger it is an ordinary message without a mention: the daily hint.
    assert bot.say(ALICE, "👍") == MENTION_HINT.format(trigger="@agent")
    # With the trigger the bot says there is nothing to rate.
    assert bot.say(ALICE, "@agent good") == NOTHING_TO_RATE.format(trigger="@agent")
    assert store.recent_feedback(10, budget()) == []


def test_an_unmentioned_thumbs_up_in_a_group_is_not_feedback(store):
    bot = TeamBot(store, enable_group_chat=True)
    group = {"is_group": True, "group_id": "CH1"}
    bot.say(ALICE, "@agent who attended the UNEA meeting?", MODEL, **group)
    assert bot.say(ALICE, "👍", **group) == MENTION_HINT.format(trigger="@agent")
    assert bot.say(ALICE, "@agent 👍", **group) == RATED["up"]
    assert len(store.recent_feedback(10, budget())) == 1


def scripted_week(bot: TeamBot, clock: Clock) -> None:
    """Ten days of a small team's traffic; the numbers the tests expect follow from it."""
    at(clock, -10)  # before the window: counts in BOB's total only
    bot.say(BOB, "@agent Where are the March notes?", model(1000))
    at(clock, 0)
    bot.say(ALICE, "@agent Who attended the UNEA meeting?", model(1000))  # first turn: cached
    at(clock, 0, 10)
    bot.say(CAROL, "@agent Who attended the UNEA meeting?", model(5000))  # cache hit: 0 ms
    at(clock, 2)
    bot.say(ALICE, "@agent What did we decide about Germany?", model(3000))
    at(clock, 2, 9, 5)
    bot.say(ALICE, "@agent 👍")  # rates the Germany answer
    bot.say(BOB, "@agent what did we decide about Germany", model(2000))
    at(clock, 3)
    bot.say(CAROL, "@agent What is the budget?", ("extractive", "timeout", 9000.0))
    bot.say(CAROL, "@agent feedback: the budget answer was slow")
    at(clock, 4)
    bot.say(ALICE, "@agent Why was Germany paused?", model(1500))
    bot.say(BOB, "@agent what is the budget", model(2500))
    at(clock, 6)
    bot.say(ALICE, "@agent who attended the UNEA meeting?", model(1100), sid="SMtoday")
    bot.say(ALICE, "@agent who attended the UNEA meeting?", model(1100), sid="SMtoday")  # again
    # A first turn, but the day-0 cache entry expired long ago (TTL one day).
    bot.say(DAVE, "@agent Who attended the UNEA meeting?", model(2200))
    at(clock, 6, 9, 10)
    bot.say(ALICE, "👎")  # without the trigger, right after the answer


def expected_days() -> list[tuple[str, int, int]]:
    per_day = {0: (2, 2), 2: (2, 2), 3: (1, 1), 4: (2, 2), 6: (2, 2)}
    days = []
    for n in range(7):
        day = WEEK_START + n * SECONDS_PER_DAY
        label = f"2026-03-{2 + n:02d}"
        assert calendar.timegm((2026, 3, 2 + n, 9, 0, 0)) == day
        days.append((label, *per_day.get(n, (0, 0))))
    return days


TOP_QUESTIONS = [
    ("who attended the unea meeting", 4),
    ("what did we decide about germany", 2),
    ("what is the budget", 2),
    ("why was germany paused", 1),
]


def test_a_scripted_week_gives_exact_numbers_to_members_and_admins(store, clock):
    bot = TeamBot(store, admin_senders=(DAVE,))
    scripted_week(bot, clock)
    # Nine questions answered in the window, one of them from the cache, plus BOB's older one.
    assert len(bot.answerer.calls) == 9

    assert bot.say(ALICE, "@agent stats") == (
        "*Your questions:* 4 in the last 7 days, 4 in total (1 today)."
    )
    assert bot.say(BOB, "@agent stats") == (
        "*Your questions:* 2 in the last 7 days, 3 in total (0 today)."
    )

    stats = store.stats(7, 5, budget())
    assert stats.days == tuple(DayUsage(*day) for day in expected_days())
    assert stats.active_senders == 4
    assert stats.answers == AnswerCounts(model=7, fallback=1, excerpts=0, cache=1)
    # 0, 1000, 1100, 1500, [2000], 2200, 2500, 3000, 9000
    assert stats.median_answer_ms == 2000.0
    assert list(stats.top_questions) == TOP_QUESTIONS
    assert (stats.feedback, stats.thumbs_up, stats.thumbs_down) == (3, 1, 1)

    team = bot.say(DAVE, "@agent stats")
    assert team == "\n".join(
        [
            "*Team usage, last 7 days*",
            "Questions: 9 from 4 active sender(s)",
            "• 2026-03-02: 2 question(s) from 2 sender(s)",
            "• 2026-03-03: 0 question(s) from 0 sender(s)",
            "• 2026-03-04: 2 question(s) from 2 sender(s)",
            "• 2026-03-05: 1 question(s) from 1 sender(s)",
            "• 2026-03-06: 2 question(s) from 2 sender(s)",
            "• 2026-03-07: 0 question(s) from 0 sender(s)",
            "• 2026-03-08: 2 question(s) from 2 sender(s)",
            "Answers: 7 from the model, 1 fallback(s) to excerpts, 1 from the cache",
            "Median answer time: 2.0 s",
            "*Most asked:*",
            "1. who attended the unea meeting (4×)",
            "2. what did we decide about germany (2×)",
            "3. what is the budget (2×)",
            "4. why was germany paused (1×)",
            "Feedback: 3 (👍 1, 👎 1, 1 written)",
        ]
    )
    assert len(team) <= 1600 and "+44" not in team


def test_the_cli_prints_the_same_numbers_and_the_recent_feedback(store, clock, make_app):
    bot = TeamBot(store, admin_senders=(DAVE,))
    scripted_week(bot, clock)
    # The CLI reads the store the traffic went to, on its clock.
    runner = make_app(ingest=False, history=store).test_cli_runner()

    result = runner.invoke(args=["stats", "--days", "7", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    feedback = report.pop("recent_feedback")
    assert report == {
        "days": 7,
        "backend": store.backend,
        "questions": 9,
        "questions_per_day": [
            {"day": day, "questions": q, "senders": n} for day, q, n in expected_days()
        ],
        "active_senders": 4,
        "answers": {"model": 7, "fallback": 1, "excerpts": 0, "cache": 1},
        "median_answer_ms": 2000.0,
        "top_questions": [{"question": q, "count": n} for q, n in TOP_QUESTIONS],
        "feedback": {"total": 3, "up": 1, "down": 1, "written": 1},
    }
    assert [(f["sender"], f["rating"], f["text"], f["question"]) for f in feedback] == [
        ("+44******0001", "down", "👎", "who attended the UNEA meeting?"),
        ("+44******0003", "", "the budget answer was slow", "What is the budget?"),
        ("+44******0001", "up", "👍", "What did we decide about Germany?"),
    ]
    assert feedback[1]["at"] == "2026-03-05T09:00:00Z"

    text = runner.invoke(args=["stats", "--days", "7"])
    assert text.exit_code == 0, text.output
    for line in [
        "Questions: 9",
        "Active senders: 4",
        "  2026-03-03  0 from 0 sender(s)",
        "Answers: 7 from the model, 1 fallback(s) to excerpts, 1 from the cache",
        "Median answer time: 2.0 s",
        "  4 x who attended the unea meeting",
        "Feedback: 3 (👍 1, 👎 1, 1 written)",
        'the budget answer was slow (about "What is the budget?")',
    ]:
        assert line in text.output
    assert "447700900003" not in text.output  # masked

    # A longer window reaches BOB's question from ten days ago.
    month = json.loads(runner.invoke(args=["stats", "--days", "30", "--json"]).output)
    assert (month["questions"], month["answers"]["model"]) == (10, 8)
    assert len(month["questions_per_day"]) == 30


def test_without_the_history_store_feedback_and_stats_say_memory_is_down():
    from bot.chat.runner import MEMORY_DOWN

    bot = TeamBot(DownHistory(), admin_senders=(DAVE,))
    assert bot.say(ALICE, "@agent feedback the answers are great") == MEMORY_DOWN
    assert bot.say(ALICE, "@agent 👍") == MEMORY_DOWN
    assert bot.say(DAVE, "@agent stats") == MEMORY_DOWN
    # An unmentioned 👍 cannot be tied to an answer: it gets the usual hint.
    assert bot.say(ALICE, "👍") == MENTION_HINT.format(trigger="@agent")


def test_an_older_sqlite_history_file_gains_the_new_columns(tmp_path, clock):
    import sqlite3

    from bot.history.sqlite import SqliteHistoryStore

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the feedback table as the first release made it
        db.execute(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,"
            " conversation TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO feedback VALUES (1, 'a', 'a', 'old words', 1.0)")
    store = SqliteHistoryStore(str(path), clock=clock)
    try:
        store.add_feedback("b", "b", "👍", budget(), rating="up")
        entries = store.recent_feedback(10, budget())
        assert [(f.text, f.rating) for f in entries] == [("👍", "up"), ("old words", "")]
    finally:
        store.close()
    SqliteHistoryStore(str(path), clock=clock).close()  # and opening it again changes nothing
