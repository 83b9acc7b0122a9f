"""Reply -> TwiML, splitting long answers at paragraph or sentence boundaries."""

from __future__ import annotations

import re

from flask import Response
from twilio.twiml.messaging_response import MessagingResponse

from bot.text import xml_safe
from bot.texts import REPLY_SHORTENED

# WhatsApp messages through Twilio are capped at 1,600 characters (error 21617).
MAX_MESSAGE_CHARS = 1600


def _pieces(text: str, limit: int) -> list[str]:
    """Break text into units no longer than `limit`: paragraphs, sentences, then words."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if len(paragraph) <= limit:
            units.append(paragraph)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+|\n", paragraph):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                units.append(sentence[:cut].rstrip())
                sentence = sentence[cut:].lstrip()
            if sentence:
                units.append(sentence)
    return [u for u in units if u.strip()]


def _numbered(parts: list[str]) -> list[str]:
    """'(1/3) ...': Twilio does not guarantee that several messages arrive in order."""
    return [f"({n}/{len(parts)}) {part}" for n, part in enumerate(parts, start=1)]


def split_message(text: str, max_messages: int, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """At most `max_messages` parts of at most `limit` characters each, numbered when
    there are several."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    # Room for the longest number, "(10/10) ", in every part.
    width = limit - len(f"({max_messages}/{max_messages}) ")
    parts: list[str] = []
    current = ""
    for unit in _pieces(text, width):
        joiner = "\n\n" if current else ""
        if len(current) + len(joiner) + len(unit) <= width:
            current += joiner + unit
            continue
        parts.append(current)
        current = unit
    if current:
        parts.append(current)
    if len(parts) > max_messages:
        parts = parts[:max_messages]
        last = parts[-1][: width - len(REPLY_SHORTENED)]
        parts[-1] = last.rstrip() + REPLY_SHORTENED
    return _numbered(parts) if len(parts) > 1 else parts


def twiml_response(text: str, max_messages: int) -> Response:
    """An HTTP 200 TwiML response: Twilio logs any 4xx/5xx as error 11200 and drops it."""
    return Response(render(text, max_messages), status=200, mimetype="text/xml")


def render(text: str, max_messages: int) -> str:
    """TwiML for a reply; empty text gives an empty <Response/> (nothing is sent)."""
    response = MessagingResponse()
    for part in split_message(xml_safe(text), max_messages):
        response.message(part)
    return str(response)
