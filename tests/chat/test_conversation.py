"""The use case with small in-process fakes of our own protocols: how it degrades."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.chat.conversation import FINISH_RESERVE_SECONDS, MEMORY_DOWN, ConversationHandler
from bot.chat.media import MediaInbox
from bot.deadline import Deadline
from bot.history.records import Delivery
from bot.history.sqlite import SqliteHistoryStore
from bot.metrics import Metrics
from bot.models import InboundMessage
from bot.settings import Settings
from bot.texts import KNOWLEDGE_DOWN
from tests.fakes.answerers import FakeAnswerer
from tests.fakes.clock import Clock
from tests.fakes.history import DownHistory
from tests.fakes.knowledge import FakeKnowledge


@pytest.fixture
def history(tmp_path):
    store = SqliteHistoryStore(str(tmp_path / "h.sqlite3"))
    yield store
    store.close()


def handler(history, knowledge=None, answerer=None, **settings) -> ConversationHandler:
    return ConversationHandler(
        Settings(**settings),
        history,
        knowledge or FakeKnowledge(),
        answerer or FakeAnswerer(),
        Metrics(),
    )


def message(body: str, sid: str = "SM1", **extra) -> InboundMessage:
    return InboundMessage(sid, "whatsapp:+447700900001", body=body, **extra)


def test_history_down_still_answers_without_history():
    answerer = FakeAnswerer()
    bot = handler(DownHistory(), answerer=answerer)
    reply = bot.handle(message("@agent who attended?"), Deadline(5))
    assert reply.text == "answer to who attended?"
    assert answerer.received[0].turns == []  # no turns


def test_history_down_commands_say_memory_is_unavailable():
    bot = handler(DownHistory())
    assert bot.handle(message("@agent reset"), Deadline(5)).text == MEMORY_DOWN
    assert bot.handle(message("@agent sources", "SM2"), Deadline(5)).text == MEMORY_DOWN


def test_knowledge_down_says_so_and_calls_no_model(history):
    answerer = FakeAnswerer()
    bot = handler(history, FakeKnowledge(fail=True), answerer)
    reply = bot.handle(message("@agent who attended?"), Deadline(5))
    assert reply.text == KNOWLEDGE_DOWN
    assert answerer.calls == []


def test_a_broken_answerer_falls_back_to_excerpts(history):
    bot = handler(history, answerer=FakeAnswerer(error=RuntimeError("bug in the answerer")))
    reply = bot.handle(message("@agent who attended?"), Deadline(5))
    assert "Amara Okafor" in reply.text
    assert bot.metrics.snapshot()["counters"]["fallbacks"] == 1


def test_the_answerer_gets_less_time_than_the_request(history):
    answerer = FakeAnswerer()
    frozen = Deadline(5, clock=Clock(1000.0))  # no time passes: only the reserve is taken
    handler(history, answerer=answerer).handle(message("@agent who attended?"), frozen)
    # What is kept back pays for storing the exchange and writing the TwiML.
    assert answerer.received[0].seconds_left == pytest.approx(5 - FINISH_RESERVE_SECONDS)
    assert FINISH_RESERVE_SECONDS > 0


def test_long_questions_are_truncated_with_a_note(history):
    answerer = FakeAnswerer()
    bot = handler(history, answerer=answerer, max_question_chars=40)
    reply = bot.handle(message("@agent " + "why " * 100), Deadline(5))
    assert len(answerer.calls[0]) == 40
    assert "first 40 characters" in reply.text


def test_follow_up_searches_with_the_earlier_question(history):
    knowledge = FakeKnowledge()
    bot = handler(history, knowledge)
    bot.handle(message("@agent what did we decide about Germany?", "SM1"), Deadline(5))
    bot.handle(message("@agent why was that decided?", "SM2"), Deadline(5))
    assert "Germany" in knowledge.queries[-1]


def test_without_require_mention_every_message_is_a_question(history):
    answerer = FakeAnswerer()
    handler(history, answerer=answerer, require_mention=False).handle(
        message("who attended?"), Deadline(5)
    )
    assert answerer.calls[0] == "who attended?"


def test_group_messages_are_ignored_unless_enabled(history):
    group = dict(is_group=True, group_id="CH1")
    assert handler(history).handle(message("@agent hi", **group), Deadline(5)).text == ""
    enabled = handler(history, enable_group_chat=True)
    assert enabled.handle(message("@agent hi", "SM2", **group), Deadline(5)).text


def test_a_duplicate_waits_for_the_first_reply_only_until_the_deadline(history):
    bot = handler(history)
    history.claim("SMslow", "whatsapp:+447700900001", Deadline(5))  # another request has it
    deadline = Deadline(0.5)
    reply = bot.handle(message("@agent who attended?", "SMslow"), deadline)
    assert reply.text == "" and reply.kind == "duplicate"
    assert deadline.remaining() > 0


WRITES = ("claim", "complete", "release", "append_exchange", "cache_answer", "notice_due")


def spy_on_writes(store) -> list[str]:
    """The names of the store's write methods as the use case calls them."""
    calls: list[str] = []
    for name in WRITES:
        method = getattr(store, name)

        def spy(*args, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(*args, **kwargs)

        setattr(store, name, spy)
    return calls


def test_an_answered_question_is_one_write_after_its_claim(history):
    writes = spy_on_writes(history)
    answerer = FakeAnswerer()
    bot = handler(history, answerer=answerer)
    reply = bot.handle(message("@agent who attended?"), Deadline(5))
    # The exchange, its delivery's reply and its cache entry: one transaction (issue 19).
    assert writes == ["claim", "append_exchange"]
    assert history.delivery("SM1", Deadline(5)) == Delivery("done", reply.text)
    assert [t.text for t in history.recent(message("").conversation, 10, Deadline(5))] == [
        "who attended?",
        reply.text,
    ]
    other = InboundMessage("SM2", "whatsapp:+447700900002", body="@agent who attended?")
    assert bot.handle(other, Deadline(5)).text == reply.text  # served from the cache
    assert answerer.calls == ["who attended?"]
    # A redelivery gets the reply as sent, without a write of its own beyond the claim.
    del writes[:]
    assert bot.handle(message("@agent who attended?"), Deadline(5)).text == reply.text
    assert writes == ["claim"]


def test_a_command_still_completes_its_delivery(history):
    writes = spy_on_writes(history)
    reply = handler(history).handle(message("@agent help"), Deadline(5))
    assert writes == ["claim", "complete"]
    assert history.delivery("SM1", Deadline(5)) == Delivery("done", reply.text)


def test_an_exchange_asked_outside_a_delivery_is_stored_at_once(history):
    # `ask` (the voice path) used on its own: nothing waits to settle it, so it is stored.
    writes = spy_on_writes(history)
    handler(history).ask(message(""), "who attended?", Deadline(5))
    assert writes == ["append_exchange"]
    assert len(history.recent(message("").conversation, 10, Deadline(5))) == 2


def test_a_voice_answer_settles_its_delivery_with_the_reply_as_sent(history):
    writes = spy_on_writes(history)
    bot = handler(history)

    def voice(msg, deadline):  # as bot/chat/voice.py does: the typed path, then a heading
        answered = bot.ask(msg, "who attended?", deadline)
        return replace(answered, text=f"Heard: who attended?\n\n{answered.text}")

    bot.media = MediaInbox("@agent", voice=voice)
    note = message("", num_media=1, media_types=("audio/ogg",), media_urls=("https://x",))
    reply = bot.handle(note, Deadline(5))
    assert reply.text.startswith("Heard: who attended?")
    assert writes == ["claim", "append_exchange"]
    assert history.delivery("SM1", Deadline(5)) == Delivery("done", reply.text)
