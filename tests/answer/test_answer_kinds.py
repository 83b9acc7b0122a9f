"""What kind of answer a question wants, and which sentences hold one."""

from __future__ import annotations

import pytest

from bot.answer.kinds import (
    AMOUNT,
    DECISION,
    PERSON,
    PLACE,
    REASON,
    TIME,
    carries,
    full_names,
    question_kinds,
    topic_text,
)
from bot.answer.sentences import units


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("how much funding do we have left?", {AMOUNT}),
        ("How many people can we send?", {AMOUNT}),
        ("When is the parliamentary briefing?", {TIME}),
        ("By what date is the brief due?", {TIME}),
        ("Who chaired the meeting?", {PERSON}),
        ("Where did the meeting take place?", {PLACE}),
        ("Which countries are we focusing on?", {PLACE}),
        ("Why did we drop Germany?", {REASON}),
        ("What did we decide about Germany?", {DECISION}),
        # "when discussing" names a moment of the meeting, not a wish for a date.
        ("What did Marketing think of the buttons when discussing the design?", set()),
        ("Summarize the discussion about the remote control.", set()),
    ],
)
def test_question_kinds(question, kinds):
    assert question_kinds(question) == kinds


def test_the_words_that_only_name_the_kind_are_no_topic():
    assert "much" not in topic_text("how much funding do we have left?")
    assert "funding" in topic_text("how much funding do we have left?")
    assert "countries" in topic_text("Which countries are we focusing on?")


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        (AMOUNT, "We budgeted 12,000 euros.", True),
        (AMOUNT, "Core funding is flat.", True),
        (AMOUNT, "On the Brazil side, that one is safe for now.", False),
        (AMOUNT, "The audit starts on 2 March 2026.", False),  # a date is no amount
        (AMOUNT, "The cost is a question for the ministry.", False),  # the question's word
        (TIME, "The audit starts on 2 March.", True),
        (TIME, "2026-03-31: note sent to Defra.", True),
        (TIME, "The deadline is tight.", False),  # "when is the deadline?" asked it
        (PLACE, "Location: Nairobi office and video call", True),
        (REASON, "The reasons were resources, not politics.", True),
        (REASON, "Side event slots fill within a week.", False),
    ],
)
def test_sentences_that_hold_a_kind(kind, text, holds):
    question = {AMOUNT: "what will it cost?", TIME: "when is the deadline?"}.get(kind, "")
    assert carries(kind, text, False, question, set()) is holds


def test_a_who_answer_names_someone_the_question_does_not():
    people = full_names("Tom Fletcher, Amara Okafor") | {"Lena"}
    question = "Who gives access to the folder?"
    assert carries(
        PERSON, "Get access to the shared knowledge folder from Lena.", False, question, people
    )
    assert not carries(PERSON, "The United Kingdom confirmed it.", False, question, people)
    assert not carries(PERSON, "Ask Lena.", False, "Who is Lena?", people)
    assert carries(PERSON, "I should go.", True, question, people)  # the speaker said it
    assert full_names("the United Kingdom and Tom Fletcher") == {"Tom", "Fletcher"}


def test_headings_are_marked_and_whole_sentence_items_stand_alone():
    text = (
        "UNEA-8 preparation meeting\n"
        "Date: 2026-03-04\n\n"
        "Why we keep notes\n"
        "Decisions are easy to lose.\n\n"
        "Action items:\n"
        "- Priya Raman: chemicals brief, first draft by 20 March.\n"
        "- Jonas Weber: written input by 30 April."
    )
    found = [(u.text, u.heading, u.title) for u in units(text, title="UNEA-8 preparation meeting")]
    assert found == [
        ("UNEA-8 preparation meeting", True, True),
        ("Date: 2026-03-04", False, False),
        ("Why we keep notes", True, False),
        ("Decisions are easy to lose.", False, False),
        ("Action items:", True, False),
        ("Priya Raman: chemicals brief, first draft by 20 March.", False, False),
        ("Jonas Weber: written input by 30 April.", False, False),
    ]
