"""One write after the claim: the exchange a message makes waits for the reply, then is
stored with the delivery's completion and its cache entry in one transaction (issue 19:
four write transactions per answered message were the largest share of its history time
and, under load, of its waits for SQLite's write lock)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Protocol

from bot.chat.degrade import without_history
from bot.deadline import Deadline
from bot.history.records import ExchangeRecord
from bot.models import InboundMessage, Reply


class SettlingHistory(Protocol):
    """The two history writes a message ends with (bot/history/store.py)."""

    def complete(self, message_sid: str, reply: str, deadline: Deadline) -> None:
        """Store the reply given to a claimed delivery."""
        ...

    def append_exchange(self, exchange: ExchangeRecord, deadline: Deadline) -> None:
        """Store an exchange, completing its delivery with `exchange.reply` when set."""
        ...


@dataclass
class Pending:
    """The exchange a message made, waiting for the reply (one per request)."""

    message_sid: str
    exchange: ExchangeRecord | None = None


# The message being handled on this thread (gthread runs each request on one thread).
_PENDING: ContextVar[Pending | None] = ContextVar("pending_exchange", default=None)


@dataclass
class Settlement:
    """Keeps a message's exchange until its reply is known, then writes both at once."""

    history: SettlingHistory

    def expect(self, msg: InboundMessage) -> Pending:
        """From now on, an exchange made for `msg` on this thread waits for `settle`."""
        pending = Pending(msg.message_sid)
        _PENDING.set(pending)
        return pending

    def store(self, exchange: ExchangeRecord, deadline: Deadline) -> None:
        """Keep the exchange for `settle`; store it now when nothing waits to settle its
        message (`ask` used on its own, a second exchange for one message)."""
        pending = _PENDING.get()
        if pending is not None and pending.message_sid == exchange.message_sid:
            if pending.exchange is None:
                pending.exchange = exchange
                return
        without_history(None, lambda: self.history.append_exchange(exchange, deadline))

    def settle(
        self, msg: InboundMessage, reply: Reply, owned: bool, pending: Pending, deadline: Deadline
    ) -> None:
        """The message's one write after its claim: the exchange it made, if any, and the
        completion of the delivery this request owns, with the reply as sent."""
        _PENDING.set(None)
        exchange = pending.exchange
        if exchange is None:
            if owned:
                without_history(
                    None, lambda: self.history.complete(msg.message_sid, reply.text, deadline)
                )
            return
        if owned:
            exchange = replace(exchange, reply=reply.text)
        without_history(None, lambda: self.history.append_exchange(exchange, deadline))
