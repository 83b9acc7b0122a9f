"""The extractive answerer quotes the best-matching sentences and names their sources."""

from __future__ import annotations

import pytest

from bot.answer.extractive import (
    MAX_SENTENCE_CHARS,
    ExtractiveAnswerer,
    content_stems,
    split_sentences,
    stem,
)
from bot.deadline import Deadline
from bot.models import Passage, Turn
from bot.texts import EXCERPTS_INTRO, NOTHING_FOUND


def bullets(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("• ")]


def ask(question, passages, turns=(), reason=""):
    return ExtractiveAnswerer().answer(question, passages, list(turns), Deadline(5), reason=reason)


def test_prefix_stemming_matches_word_forms():
    assert stem("attended") == stem("Attendees") == stem("attend")
    assert stem("budgets") == stem("budget")
    assert content_stems("Who attended the meeting?") == {stem("attended"), stem("meeting")}


def test_who_attended_finds_the_attendees_sentence(passages):
    answer = ask("who attended the UNEA prep?", passages)
    assert bullets(answer.text)[0].startswith("Attendees: Amina Diallo")
    assert answer.backend == "extractive"
    assert answer.text.startswith(EXCERPTS_INTRO)


def test_sentences_are_ranked_by_relevance(passages):
    answer = ask("What is the budget for the side event?", passages)
    assert "12,000 euros" in bullets(answer.text)[0]


def test_transcript_lines_keep_their_speaker():
    sentences = split_sentences("Lars: The budget is 12,000 euros. We ask the ministry.")
    assert sentences == ["Lars: The budget is 12,000 euros.", "Lars: We ask the ministry."]


def test_three_to_five_bulleted_excerpts_with_sources(passages):
    answer = ask("Amina newsletter budget deadline venue", passages)
    assert 3 <= len(bullets(answer.text)) <= 5
    last = answer.text.splitlines()[-1]
    assert last.startswith("Sources: ")
    assert set(answer.sources) <= {p.source for p in passages}
    for source in answer.sources:
        assert source in last
    assert len(answer.sources) == len(set(answer.sources))


def test_only_used_sources_are_named(passages):
    answer = ask("newsletter Tuesday social media calendar", passages[1:])
    assert answer.sources == (passages[1].source,)


def test_long_sentences_are_clipped():
    text = "The plan " + "really " * 200 + "works."
    answer = ask("plan", [Passage(text=text, source="long", score=1.0)])
    assert all(len(b) <= MAX_SENTENCE_CHARS for b in bullets(answer.text))


def test_no_passages_says_nothing_was_found():
    answer = ask("who attended?", [])
    assert answer.text == NOTHING_FOUND
    assert answer.sources == ()


def test_fallback_reason_adds_one_plain_line(passages):
    answer = ask("who attended?", passages, reason="http 429")
    assert answer.fallback_reason == "http 429"
    first = answer.text.splitlines()[0].lower()
    assert "unavailable" in first
    assert "429" not in answer.text and "http" not in answer.text.lower()


def test_follow_up_borrows_the_previous_question(passages):
    turns = [Turn("user", "What is the side event budget?"), Turn("assistant", "12,000 euros.")]
    answer = ask("why?", passages, turns)
    assert "12,000 euros" in bullets(answer.text)[0]


@pytest.mark.parametrize(
    "question",
    ["", "   ", "???", "🤖🤖", "a" * 10_000, "Lucene: AND OR (* ~ ^", "\x00\n\t", None],
)
def test_never_raises_on_weird_questions(question, passages):
    answer = ask(question, passages)
    assert answer.text and answer.backend == "extractive"


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n", "...", ": : :", "Name:", "x" * 50_000, "émoji 🎉. Ünïcödé! 日本語のテキスト。"],
)
def test_never_raises_on_weird_passages(text):
    answer = ask("anything", [Passage(text=text, source="", score=0.0)])
    assert answer.text


def test_hard_wrapped_prose_is_rejoined_into_whole_sentences():
    text = (
        "We do not have the staff capacity: Jonas is our only German-speaking officer\n"
        "and is now part-time. The funding is gone.\n"
        "Notes by: Lena Hoffmann"
    )
    assert split_sentences(text) == [
        "We do not have the staff capacity: Jonas is our only German-speaking officer "
        "and is now part-time.",
        "The funding is gone.",
        "Notes by: Lena Hoffmann",
    ]


def test_a_list_stays_with_the_line_that_introduces_it():
    text = "We decided to stop Germany work:\n- no briefings\n- no workplan\n\nOther text."
    assert split_sentences(text)[0] == "We decided to stop Germany work: no briefings; no workplan"


def test_attendees_of_the_meeting_asked_about_come_before_other_meetings():
    other = Passage("Budget review\nAttendees: Ola, Per", "Budget review", 2.0, title="Budget")
    unea = Passage("Attendees: Amara, Jonas", "UNEA prep", 1.0, title="UNEA prep meeting")
    answer = ask("who attended the UNEA meeting?", [other, unea])
    assert bullets(answer.text)[0] == "Attendees: Amara, Jonas"
    assert "UNEA prep meeting" not in bullets(answer.text)  # a title is not an excerpt


def test_a_follow_up_uses_the_topic_of_the_earlier_question():
    passages = [
        Passage("The UK timeline moved to June. Germany was dropped for lack of staff.", "n", 1.0)
    ]
    turns = [Turn("user", "what about Germany?"), Turn("assistant", "It was dropped.")]
    answer = ask("why was that?", passages, turns)
    assert bullets(answer.text)[0] == "Germany was dropped for lack of staff."
