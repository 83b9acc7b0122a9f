"""Text helpers shared by the layers: cleaning, phone numbers, XML safety. No Flask, no drivers."""

from __future__ import annotations

import re
import unicodedata

# Characters XML 1.0 forbids (C0 controls but tab, newline and return; lone surrogates;
# U+FFFE/U+FFFF). One of them in a reply makes the TwiML ill-formed, and Twilio then drops
# the whole reply; a lone surrogate cannot even be encoded as UTF-8 for the database.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters an XML 1.0 document cannot carry."""
    return _NOT_XML.sub("", text)


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


# The one stopword list: words that carry no topic, in the languages teams ask in (English,
# Spanish, French), plus the bot's own names. Retrieval drops them from queries, extractive
# answers from the words they match on, follow-up detection from what names a topic.
STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each
    else few for from further had has have having he her here hers him his how i if in
    into is it its itself just me might more most my no nor not now of off on once only or
    other our ours out over own please same she should so some such tell than that the
    their theirs them then there these they this those through to too under until up us
    very was we were what when where which while who whom whose why will with would you
    your yours know say said thanks thank hi hello hey agent bot
    el la los las un una unos unas de del y o que en por para con se es son como qué
    quién cuándo dónde le les lo al su sus
    une des du et ou qui quoi pour avec est sont dans sur au aux
    """.split()
)
