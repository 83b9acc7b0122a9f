"""A question the knowledge base does not cover: the store finds no passage (its relevance
floor), and the bot says so instead of guessing: no model call, and nothing cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat.conversation import ConversationHandler
from bot.deadline import Deadline
from bot.history.sqlite import SqliteHistoryStore
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from bot.metrics import Metrics
from bot.models import InboundMessage
from bot.settings import Settings
from bot.texts import NOTHING_FOUND
from tests.fakes.answerers import FakeAnswerer
from tests.fakes.knowledge import FakeKnowledge
from tests.support import ALICE, API_KEY, BOB, Worker, reply_texts_of, twilio_form

OFFTOPIC = "@agent What is a good recipe for banana bread?"
COVERED = "@agent Why did we stop working on Germany?"


class NothingFound(FakeKnowledge):
    """Records the query, finds nothing (as a store does below its floor)."""

    def search(self, query: str, k: int, deadline: Deadline, collections=None) -> list:
        self.queries.append(query)
        return []


def test_the_use_case_says_not_found_without_an_answerer_and_caches_nothing(tmp_path) -> None:
    history = SqliteHistoryStore(str(tmp_path / "h.sqlite3"))
    knowledge, answerer = NothingFound(), FakeAnswerer()
    bot = ConversationHandler(Settings(), history, knowledge, answerer, Metrics())
    try:
        for sid, sender in (("SM1", ALICE), ("SM2", BOB)):  # BOB's first turn could hit a cache
            reply = bot.handle(InboundMessage(sid, sender, body=OFFTOPIC), Deadline(5))
            assert (reply.text, reply.kind, reply.sources) == (NOTHING_FOUND, "answer", ())
    finally:
        history.close()
    assert answerer.calls == []
    assert len(knowledge.queries) == 2  # searched again: the first reply was not cached


def test_extractive_answers_say_not_found_and_answer_a_covered_question(
    spied_app, signed_post
) -> None:
    worker = Worker(spied_app, signed_post, knowledge_relevance_floor=True)
    assert worker.ask(OFFTOPIC, ALICE) == NOTHING_FOUND
    assert worker.ask(OFFTOPIC, BOB) == NOTHING_FOUND
    assert worker.work == (2, 0)  # searched twice (nothing cached), the answerer never ran
    assert "resources, not politics" in worker.ask(COVERED, ALICE)
    assert worker.work == (3, 1)


@pytest.mark.parametrize("vectors", [False, True], ids=["full-text", "hybrid"])
def test_the_model_is_not_asked_what_the_knowledge_base_does_not_cover(
    make_app, mistral, signed_post, tmp_path: Path, vectors: bool
) -> None:
    # Without vectors: a store given to the app without the embedder a key would add.
    path = str(tmp_path / "k.sqlite3")
    knowledge = None if vectors else SqliteKnowledgeStore(path, relevance_floor=True)
    app = make_app(
        knowledge=knowledge,
        mistral_api_key=API_KEY,
        mistral_server_url=mistral.url,
        knowledge_relevance_floor=True,
    )
    client = app.test_client()
    assert reply_texts_of(signed_post(client, twilio_form(OFFTOPIC))) == [NOTHING_FOUND]
    assert mistral.chat_requests == []
    embedded = [r for r in mistral.requests if r.path == "/v1/embeddings"]
    assert len(embedded) == (2 if vectors else 0)  # the sample's 25 chunks, the question
    [reply] = reply_texts_of(signed_post(client, twilio_form(COVERED)))
    assert reply.startswith("Stub answer to:") and len(mistral.chat_requests) == 1
