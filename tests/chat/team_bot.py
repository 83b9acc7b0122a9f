"""A ConversationHandler on a real history store, with fakes of our own protocols and clocks
the test moves: for scripted traffic whose numbers are known exactly."""

from __future__ import annotations

from bot.chat.conversation import ConversationHandler
from bot.deadline import Deadline
from bot.metrics import Metrics
from bot.models import Answer, InboundMessage, Passage
from bot.settings import Settings

PASSAGE = Passage("Attendees: Amara Okafor, Jonas Weber.", "UNEA prep (2026-03-04)", 1.0)


class Timer:
    """perf_counter stand-in: answers take exactly as long as the script says."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Knowledge:
    """Counts searches; `version` is what an ingest would change."""

    backend = "fake"

    def __init__(self) -> None:
        self.searches: list[str] = []
        self.version_id = "v1"

    def version(self) -> str:
        return self.version_id

    def search(self, query, k, deadline):
        self.searches.append(query)
        return [PASSAGE]


class ScriptedAnswerer:
    """Answers every question; `plan` says how (backend, fallback reason, milliseconds)."""

    name = "scripted"

    def __init__(self, timer: Timer) -> None:
        self.timer, self.calls = timer, []
        self.plan: tuple[str, str, float] = ("mistral", "", 1000.0)

    def answer(self, question, passages, turns, deadline):
        self.calls.append(question)
        backend, reason, milliseconds = self.plan
        self.timer.now += milliseconds / 1000
        return Answer(f"answer {len(self.calls)}: {question}", (PASSAGE.source,), backend, reason)


class TeamBot:
    """Sends messages through a handler; `say` returns the reply text."""

    def __init__(self, store, **settings) -> None:
        self.timer = Timer()
        self.knowledge = Knowledge()
        self.answerer = ScriptedAnswerer(self.timer)
        self.handler = ConversationHandler(
            Settings(**settings),
            store,
            self.knowledge,
            self.answerer,
            Metrics(),
            timer=self.timer,
        )
        self._sids = 0

    def say(self, sender: str, body: str, plan=None, sid: str | None = None, **extra) -> str:
        if plan is not None:
            self.answerer.plan = plan
        if sid is None:
            self._sids += 1
            sid = f"SM{self._sids:032d}"
        reply = self.handler.handle(InboundMessage(sid, sender, body=body, **extra), Deadline(5))
        return reply.text
