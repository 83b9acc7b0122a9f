"""Twilio's webhook form -> InboundMessage (sanitised, the channel kept in the sender)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.models import InboundMessage
from bot.text import clean_text, normalise_number

# Twilio's media URLs are under 200 characters; a longer one is kept as "", which bot/media
# refuses (cut short, it could still look like a media URL).
MAX_MEDIA_URL = 512


class BadRequest(ValueError):
    """The form cannot be a Twilio message (missing From or MessageSid)."""


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
    # Each attachment's URL and the content type the sender's phone claimed, in Twilio's
    # order; bot/media fetches a URL only from Twilio's API host and checks the type.
    media = [
        (
            url if len(url) <= MAX_MEDIA_URL else "",
            clean_text(form.get(f"MediaContentType{i}") or "")[:100],
        )
        for i in range(num_media)
        if (url := (form.get(f"MediaUrl{i}") or "").strip())
    ]
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
        media_types=tuple(content_type for _, content_type in media),
        media_urls=tuple(url for url, _ in media),
        profile_name=clean_text(form.get("ProfileName") or "")[:100],
        is_group=bool(group_id),
        group_id=group_id[:64],
    )
