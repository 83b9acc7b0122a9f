"""Command parsing: commands are recognised, questions that merely start alike are not."""

from __future__ import annotations

import pytest

from bot.chat.commands import Command, parse_command

COMMANDS = [
    ("help", Command("help")),
    ("/help", Command("help")),
    ("Clear!", Command("reset")),
    ("stats.", Command("stats")),
    ("feedback", Command("feedback")),
    ("feedback the answers are too long", Command("feedback", "the answers are too long")),
    ("Feedback: can you add dates?", Command("feedback", "can you add dates?")),
    ("feedback - cite sources please", Command("feedback", "cite sources please")),
    ("forget me", Command("forget")),
    ("forget", Command("forget")),
    ("Forget me, yes!", Command("forget-confirm")),
    ("forget me confirm", Command("forget-confirm")),
    ("👍", Command("rate", "up")),
    ("👍🏾👍🏾", Command("rate", "up")),
    ("Good!", Command("rate", "up")),
    ("👎", Command("rate", "down")),
    ("bad.", Command("rate", "down")),
]
QUESTIONS = [
    "help me with the UK timeline",
    "feedback from the client meeting?",
    "what feedback did the client give?",
    "forget me not: what did we decide?",
    "forget about Germany, what about France?",
    "good morning, who attended?",
    "bad news from the UNEA meeting?",
    "stats for Germany?",
]


@pytest.mark.parametrize(("text", "command"), COMMANDS)
def test_commands_are_recognised(text, command):
    assert parse_command(text) == command


@pytest.mark.parametrize("text", QUESTIONS)
def test_questions_stay_questions(text):
    assert parse_command(text) is None
