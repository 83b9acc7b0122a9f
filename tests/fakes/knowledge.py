"""A fake of our KnowledgeStore protocol (bot/knowledge/store.py) that records queries."""

from __future__ import annotations

from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable
from bot.knowledge.store import KnowledgeStore, Readable
from bot.models import Passage

PASSAGE = Passage(
    "Attendees: Amara Okafor, Jonas Weber. The team agreed to pause Germany.",
    "UNEA prep (2026-03-04)",
    1.0,
)


class FakeKnowledge:
    """Records every query in `queries`, then finds PASSAGE; raises KnowledgeUnavailable
    when `fail`; with `wraps`, searches that store instead (a spy: every other attribute,
    from `version` to `upsert` and `close`, is the wrapped store's too)."""

    def __init__(self, *, wraps: KnowledgeStore | None = None, fail: bool = False) -> None:
        self.wraps, self.fail = wraps, fail
        self.backend = wraps.backend if wraps is not None else "fake"
        self.queries: list[str] = []

    def version(self) -> str:
        return self.wraps.version() if self.wraps is not None else "v1"

    def search(
        self, query: str, k: int, deadline: Deadline, collections: Readable = None
    ) -> list[Passage]:
        self.queries.append(query)
        if self.fail:
            raise KnowledgeUnavailable("down")
        if self.wraps is not None:
            return self.wraps.search(query, k, deadline, collections)
        return [PASSAGE][:k] if collections is None or collections else []

    def __getattr__(self, name: str):
        wraps = self.__dict__.get("wraps")  # not self.wraps: that would recurse before __init__
        if wraps is None:
            raise AttributeError(name)
        return getattr(wraps, name)
