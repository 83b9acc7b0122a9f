"""Messages with media: a voice note is transcribed and answered (voice.py), a document an
admin sends with "add" is ingested (documents.py), anything else gets the polite
"text and voice only" reply. The download itself is bot/media's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.deadline import Deadline
from bot.media import MediaFile, kind_of
from bot.models import InboundMessage, Reply
from bot.texts import MEDIA_REPLY


class MediaSource(Protocol):
    """Where a message's media comes from (bot/media's TwilioMedia)."""

    def fetch(self, url: str, content_type: str, deadline: Deadline) -> MediaFile:
        """The checked bytes of one attachment; raises MediaUnavailable."""
        ...


# Answers a question as if it had been typed: (message, question, deadline) -> Reply.
Ask = Callable[[InboundMessage, str, Deadline], Reply]


# One route per kind of media: (message, deadline) -> its Reply, or None to treat the
# message as its text alone.
Route = Callable[[InboundMessage, Deadline], "Reply | None"]


@dataclass
class MediaInbox:
    """Routes a message by its first attachment's kind (bot/media/kinds.py)."""

    trigger: str
    voice: Route | None = None  # "audio"
    document: Route | None = None  # "document"

    def handle(self, msg: InboundMessage, deadline: Deadline) -> Reply | None:
        """The reply to a message that carries media; None when its text is to be
        answered as if it had come alone (a photo with a question as its caption)."""
        kind = kind_of(msg.media_types[0]) if msg.media_types else None
        route = {"audio": self.voice, "document": self.document}.get(kind.kind if kind else "")
        if route is not None:
            return route(msg, deadline)
        if msg.body and self.document is not None:
            # Any other attachment with a caption: the document route answers one that
            # asks to add it (which files can be added), else None (the caption's text).
            return self.document(msg, deadline)
        if msg.body:
            return None
        return Reply(MEDIA_REPLY.format(trigger=self.trigger), kind="media")
