"""Who may read which collection of documents: the names, and a sender's readable set.

Every document belongs to one collection (`general` unless ingest or an admin says
otherwise). With no `knowledge.collections` in config.json everyone reads everything, as
before collections existed; with it, a sender reads the union of the collections whose
list names them or holds "*", and nothing else, whichever store holds the documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_COLLECTION = "general"
EVERYONE = "*"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
NAME_RULE = "a collection name of lower-case letters, digits, - and _ (up to 40), such as board"


def collection_name(value: object) -> str:
    """A valid collection name, or ValueError saying what is allowed."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(NAME_RULE)
    return value


@dataclass(frozen=True)
class Readers:
    """config.json's collections and who reads each: ((name, (sender or "*", ...)), ...)."""

    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def configured(self) -> bool:
        """Whether collections restrict anyone (without them, everyone reads everything)."""
        return bool(self.grants)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.grants)

    def readable(self, sender: str, group: bool = False) -> frozenset[str] | None:
        """The collections `sender` may read; None when collections are not configured
        (everything); an empty set reads nothing. In a `group`, whose every member reads
        the reply, only the collections everyone reads."""
        if not self.grants:
            return None
        return frozenset(
            name
            for name, senders in self.grants
            if EVERYONE in senders or (sender in senders and not group)
        )


def cache_scope(readable: frozenset[str] | None) -> str:
    """The collections an answer could draw from, as history and the answer cache file it:
    "" for everything (no collections configured), "-" for none, else "board,general"."""
    return "" if readable is None else ",".join(sorted(readable)) or "-"


def fits(scope: str, readable: frozenset[str] | None) -> bool:
    """Whether an answer made for `scope` (cache_scope) may be shown to a reader of
    `readable`: its collections are all readable. An answer made before collections were
    configured ("") could hold anything, so it fits only where nothing is restricted."""
    if readable is None:
        return True
    if not scope:
        return False
    return scope == "-" or set(scope.split(",")) <= readable
