"""Plain data passed between the layers: no Flask, no drivers, no SDKs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    """One retrieved piece of knowledge, with enough metadata to name its source."""

    text: str
    source: str  # human-readable label shown to users, e.g. "UNEA prep meeting (2026-03-04)"
    score: float  # higher is more relevant, whatever the backend's native scale
    document_id: str = ""
    chunk_id: str = ""
    title: str = ""
    date: str = ""
    speakers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """One message of a conversation's history."""

    role: str  # "user" or "assistant"
    text: str
    created_at: float = 0.0  # unix seconds
    sender: str = ""  # who asked (in a group, one of its members)
    readers: str = ""  # the collections its answer could draw from (bot/readers.cache_scope)


@dataclass(frozen=True)
class Answer:
    """What an answerer produced for one question."""

    text: str
    sources: tuple[str, ...] = ()
    backend: str = "extractive"  # "mistral", "extractive", "none"
    fallback_reason: str = ""  # why a fallback answered ("timeout", "http 429", ...)
    tokens: int = 0


@dataclass(frozen=True)
class InboundMessage:
    """A parsed, verified Twilio webhook request."""

    message_sid: str
    sender: str  # normalised "whatsapp:+E164" (or whatever Twilio sent, stripped)
    to: str = ""
    body: str = ""
    num_media: int = 0
    media_types: tuple[str, ...] = ()
    media_urls: tuple[str, ...] = ()  # MediaUrl{N}, index for index with media_types
    profile_name: str = ""
    is_group: bool = False
    group_id: str = ""

    @property
    def conversation(self) -> str:
        """The key that isolates history: the group when Twilio marks one, else the sender."""
        return f"group:{self.group_id}" if self.is_group and self.group_id else self.sender


@dataclass(frozen=True)
class Reply:
    """What the bot says back; `text` empty means an empty <Response/>."""

    text: str = ""
    kind: str = "none"  # "answer", "command", "hint", "media", "duplicate", "none", ...
    sources: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
