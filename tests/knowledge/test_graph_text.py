"""Pure helpers of the graph store: safe full-text queries, people questions, fusion, BM25."""

from __future__ import annotations

import re

import pytest

from bot.knowledge.graph.rank import bm25, rarest, stem
from bot.knowledge.graph.text import (
    MAX_QUERY_BYTES,
    MAX_TERMS,
    best_title_match,
    clip_bytes,
    escape_lucene,
    escape_redisearch,
    is_people_question,
    lucene_query,
    reciprocal_rank_fusion,
    redisearch_query,
    search_terms,
)
from tests.support import HOSTILE_GRAPH_QUESTIONS

# A Lucene query we build: quoted terms (backslash escapes inside) or `stem*`, joined by OR.
_LUCENE_PART = r'(?:"(?:[^"\\]|\\.)*"|\w+\*)'
_LUCENE = re.compile(rf"^(?:{_LUCENE_PART}(?: OR {_LUCENE_PART})*)?$")
# A RediSearch query we build: words (backslash escapes allowed) or `stem*`, joined by |.
_REDIS_PART = r"(?:(?:\w|\\.)+\*?)"
_REDIS = re.compile(rf"^(?:{_REDIS_PART}(?:\|{_REDIS_PART})*)?$")


@pytest.mark.parametrize("question", HOSTILE_GRAPH_QUESTIONS)
def test_hostile_questions_become_plain_term_queries(question: str) -> None:
    lucene, redis = lucene_query(question), redisearch_query(question)
    assert _LUCENE.match(lucene), lucene
    assert _REDIS.match(redis), redis
    assert len(lucene.encode()) <= MAX_QUERY_BYTES and len(redis.encode()) <= MAX_QUERY_BYTES
    for operator in (" AND ", " NOT ", " TO "):
        assert operator not in lucene


def test_terms_drop_stopwords_keep_inner_underscores_and_are_capped() -> None:
    assert search_terms("Who attended the UNEA-8 meeting?") == ["attended", "unea", "8", "meeting"]
    assert search_terms("what is blue_falcon?") == ["blue_falcon"]
    assert search_terms("who are you?") == ["who", "are", "you"]  # nothing else is left
    assert len(search_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS


def test_lucene_terms_are_quoted_and_escaped() -> None:
    assert lucene_query("Germany deprioritised") == '"germany" OR "deprioritised"'
    assert lucene_query("who attended?") == "attend*"
    assert escape_lucene('a+b-c:"d"\\/') == 'a\\+b\\-c\\:\\"d\\"\\\\\\/'


def test_redisearch_terms_are_escaped_and_or_joined() -> None:
    assert redisearch_query("Germany, deprioritised!") == "germany|deprioritised"
    assert escape_redisearch("a-b@c{d}|e's") == "a\\-b\\@c\\{d\\}\\|e\\'s"
    assert escape_redisearch("plain_word42") == "plain_word42"


def test_clip_bytes_never_splits_a_character() -> None:
    assert clip_bytes("会议记录", 7) == "会议"
    assert clip_bytes("abc", 10) == "abc"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("who attended the UNEA meeting?", True),
        ("Who spoke in the budget call", True),
        ("who was at the Berlin workshop?", True),
        ("list the participants of the sync", True),
        ("who joined on Monday?", True),
        ("who owns the newsletter?", False),
        ("who is in charge of the budget?", False),
        ("what did we decide about Germany?", False),
    ],
)
def test_people_questions_are_recognised(question: str, expected: bool) -> None:
    assert is_people_question(question) is expected


def test_the_meeting_asked_about_is_found_by_its_title() -> None:
    titles = ["Team handbook", "Country prioritisation meeting", "UNEA-8 preparation meeting"]
    assert best_title_match("who attended the UNEA meeting?", titles) == 2
    assert best_title_match("who attended?", titles) == 0  # no clue: the best hit


def test_reciprocal_rank_fusion_prefers_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "d"]])
    assert {key for key, _ in fused[:2]} == {"b", "c"}  # found by both legs
    scores = dict(fused)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 62)
    assert scores["a"] == pytest.approx(1 / 61) and scores["d"] == pytest.approx(1 / 63)
    assert scores["b"] > scores["a"] and scores["c"] > scores["a"]
    assert reciprocal_rank_fusion([["x", "x", "y"]]) == [("x", 1 / 61), ("y", 1 / 62)]


def test_bm25_weighs_rare_terms_and_titles() -> None:
    rows = [
        {"text": "meeting meeting meeting about the plan", "title": "Weekly"},
        {"text": "the unea resolution draft", "title": "Notes"},
        {"text": "nothing relevant here", "title": "UNEA prep"},
        {"text": "no match at all", "title": "Other"},
    ]
    ranked = bm25(["unea", "meeting"], {"unea": 2, "meeting": 50}, 100, rows)
    texts = [row["text"] for row, _ in ranked]
    assert texts[:2] == ["nothing relevant here", "the unea resolution draft"]  # title x2
    assert "no match at all" not in texts
    assert bm25(["attend*"], {"attend*": 1}, 10, [{"text": "Attendees: Ann"}])


def test_rarest_terms_fill_the_candidate_budget() -> None:
    assert rarest({"common": 900, "rare": 3, "mid": 150, "absent": 0}, rows=200) == [
        "rare",
        "mid",
    ]
    assert rarest({"common": 900}, rows=200) == ["common"]  # at least one term
    assert stem("meetings") == stem("meeting") and stem("is") == "is"
