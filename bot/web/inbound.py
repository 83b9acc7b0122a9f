"""InboundMessage parsing, sanitising and mention detection."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from bot.models import InboundMessage


class BadRequest(ValueError):
    """The form cannot be a Twilio message (missing From or MessageSid)."""


# Invisible format characters (zero-width, bidi overrides) are stripped, except the
# zero-width joiner that composes emoji sequences.
_KEEP_FORMAT = {"\u200d"}


def clean_text(text: str) -> str:
    """Drop control and invisible characters, keep newlines, tabs and emoji."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\n\t" or ch in _KEEP_FORMAT:
            kept.append(ch)
        elif category in ("Cc", "Cs", "Co") or (category == "Cf"):
            continue
        else:
            kept.append(ch)
    return "".join(kept).strip()


def normalise_number(value: str, default_channel: str = "whatsapp") -> str:
    """'whatsapp:+44 7700-900123' -> 'whatsapp:+447700900123'; a number without a channel
    gets `default_channel` (other channels kept as sent)."""
    value = value.strip()
    channel, sep, number = value.partition(":")
    if not sep:
        channel, number = default_channel, value
    number = re.sub(r"[\s\-().]", "", number)
    return f"{channel.lower()}:{number}"


def mask_number(value: str) -> str:
    """'whatsapp:+447700900123' -> '+44******0123': safe for logs."""
    digits = value.rpartition(":")[2]
    if len(digits) <= 7:
        return "***"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def parse_form(form: Mapping[str, str]) -> InboundMessage:
    """Build an InboundMessage from Twilio's form fields; unknown fields are ignored."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid or not sender:
        raise BadRequest("missing From or MessageSid")
    try:
        num_media = max(0, min(int(form.get("NumMedia") or 0), 10))
    except ValueError:
        num_media = 0
    media_types = tuple(
        form.get(f"MediaContentType{i}", "") for i in range(num_media) if form.get(f"MediaUrl{i}")
    )
    # Twilio's Conversations API marks group traffic with a ConversationSid; plain
    # Messaging webhooks (all a Twilio WhatsApp number receives) never do.
    group_id = (form.get("ConversationSid") or "").strip()
    return InboundMessage(
        message_sid=clean_text(sid)[:64],
        # The channel is part of the identity: Twilio sends SMS senders without a prefix,
        # and an SMS from a listed WhatsApp number must not pass as that person.
        sender=normalise_number(clean_text(sender), default_channel="sms")[:64],
        to=clean_text(form.get("To") or "")[:64],
        body=clean_text(form.get("Body") or ""),
        num_media=num_media,
        media_types=media_types,
        profile_name=clean_text(form.get("ProfileName") or "")[:100],
        is_group=bool(group_id),
        group_id=group_id[:64],
    )


@lru_cache(maxsize=32)
def _trigger_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so "hey agent" wins over "hey". A phrase's words may be separated by
    # any run of whitespace ("Hey  Agent"); each piece is a literal, so no user text can
    # make the pattern backtrack badly.
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in w.split())
        for w in sorted(words, key=len, reverse=True)
    )
    # A word boundary that also works for triggers starting with '@': no word character
    # (or '@') directly before, none directly after. Punctuation right after the trigger
    # ("@agent, ...", "hey agent: ...") goes with it.
    return re.compile(rf"(?<![\w@])(?:{alternatives})(?!\w)[,:;]*", re.IGNORECASE)


def find_mention(body: str, trigger_words: tuple[str, ...]) -> tuple[bool, str]:
    """(mentioned, question): the question is the body without the trigger words."""
    pattern = _trigger_pattern(trigger_words)
    if not pattern.search(body):
        return False, body.strip()
    question = pattern.sub(" ", body)
    # "@agent, what ..." / "@agent: what ..." leave stray punctuation at the start.
    question = re.sub(r"^[\s,:;.\-–—!]+", "", question)
    return True, re.sub(r"[ \t]{2,}", " ", question).strip()
