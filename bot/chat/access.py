"""Who may use the bot: the allowlist, admins, and the refusal a stranger gets."""

from __future__ import annotations

import hashlib

from bot.settings import Settings
from bot.texts import REFUSED


class AccessPolicy:
    """Allowlist and admin checks on normalised sender ids ('whatsapp:+E164', 'sms:+E164')."""

    def __init__(self, settings: Settings) -> None:
        self._local = settings.local_mode
        self._every_whatsapp = "*" in settings.allowed_senders
        self._allowed = frozenset(settings.allowed_senders)
        self._admins = frozenset(settings.admin_senders)
        self.readers = settings.readers  # who reads which collection

    def allows(self, sender: str) -> bool:
        """Local mode admits everyone and "*" every WhatsApp sender; otherwise only listed
        senders, channel included ("sms:+44..." is not "whatsapp:+44..."); none if empty."""
        if self._local or sender in self._allowed or sender in self._admins:
            return True
        return self._every_whatsapp and sender.startswith("whatsapp:")

    def is_admin(self, sender: str) -> bool:
        """Admins may see the team's statistics."""
        return sender in self._admins


def refusal_text(sender: str) -> str:
    """The one reply a sender outside the allowlist gets, naming their own number."""
    return REFUSED.format(number=sender.removeprefix("whatsapp:"))


def rate_key(sender: str) -> str:
    """The rate-limit key for a sender: a hash, so no phone number reaches Redis or logs."""
    return "sender:" + hashlib.sha256(sender.encode()).hexdigest()[:24]
