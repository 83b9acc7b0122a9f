"""Value checkers for the configuration loader: each returns the clean value or raises
ValueError(what is allowed), which bot/settings.py turns into the one-line error."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bot.readers import NAME_RULE, collection_name
from bot.text import normalise_number

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError("true or false")


def whole_number(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return check


def seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("a number of seconds greater than 0 (at most 14)")
    if value <= 0:
        raise ValueError("a number of seconds greater than 0 (at most 14)")
    return float(value)


def string(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("a string")
    return value.strip()


def nonempty(value: Any) -> str:
    text = string(value)
    if not text:
        raise ValueError("a non-empty string")
    return text


# Schemes whose URL names no host: flask-limiter's per-process storage is "memory://".
HOSTLESS_SCHEMES = ("memory",)


def url(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = string(value)
        if not text:
            return ""
        allowed = f"a URL starting with {' or '.join(s + '://' for s in schemes)}"
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unbalanced "[" in the host
            raise ValueError(allowed) from None
        hostless = parts.scheme in HOSTLESS_SCHEMES and text == f"{parts.scheme}://"
        if parts.scheme not in schemes or not (parts.netloc or hostless):
            raise ValueError(allowed)
        return text if hostless else text.rstrip("/")

    return check


def public_base_url(value: Any) -> str:
    text = url("https", "http")(value)
    if text and (urlsplit(text).query or urlsplit(text).fragment):
        raise ValueError("a base URL without query or fragment, e.g. https://bot.example.com")
    return text


# Hosts that are this machine: the only ones a media base URL may name over plain http.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def media_base_url(value: Any) -> str:
    """Twilio's API origin for media: https, or http to this machine (a test stand-in)."""
    allowed = (
        'an https:// origin such as "https://api.twilio.com" (http:// only for 127.0.0.1 or'
        " localhost), without path, query or credentials"
    )
    try:
        text = url("https", "http")(value)
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValueError(allowed) from None
    extra = parts.path or parts.query or parts.fragment or "@" in parts.netloc
    if not parts.hostname or extra:
        raise ValueError(allowed)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(allowed)
    return text


def trigger_words(value: Any) -> tuple[str, ...]:
    """Words or phrases ("hey agent"): a phrase's inner whitespace becomes one space."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError('a non-empty list of words or phrases, e.g. ["@agent", "hey agent"]')
    words = tuple(" ".join(w.split()) for w in value)
    if not words or not all(words):
        raise ValueError('a non-empty list of words or phrases, e.g. ["@agent", "hey agent"]')
    return tuple(dict.fromkeys(words))


def log_level(value: Any) -> str:
    text = string(value).upper()
    if text not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return text


def whatsapp_number(value: Any) -> str:
    text = string(value)
    bare = text.removeprefix("whatsapp:")
    if text and not (bare.startswith("+") and bare[1:].isdigit() and 8 <= len(bare) <= 16):
        raise ValueError('an E.164 number such as "whatsapp:+14155238886"')
    return text


# Channels a sender entry may name; a number without one is a WhatsApp number.
SENDER_CHANNELS = ("whatsapp", "sms")


def sender(value: Any) -> str:
    """'whatsapp:+44 7700-900123' or '+44 7700-900123' -> 'whatsapp:+447700900123',
    'sms:+44...' stays an SMS sender; '*' stays '*'."""
    text = string(value)
    if text == "*":
        return text
    number = normalise_number(text)
    channel, _, bare = number.partition(":")
    e164 = bare.startswith("+") and bare[1:].isdigit() and 8 <= len(bare) <= 16
    if channel not in SENDER_CHANNELS or not e164:
        raise ValueError(
            'E.164 numbers such as "+447700900123" (WhatsApp) or "sms:+447700900123"'
            ' (or "*" for every WhatsApp sender)'
        )
    return number


def senders(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('a list of E.164 numbers such as ["+447700900123"], or ["*"]')
    return tuple(dict.fromkeys(sender(v) for v in value))


def admins(value: Any) -> tuple[str, ...]:
    admins = senders(value)
    if "*" in admins:
        raise ValueError('a list of E.164 numbers such as ["+447700900123"] ("*" not allowed)')
    return admins


def comma_list(check: Callable[[Any], tuple[str, ...]]) -> Callable[[Any], tuple[str, ...]]:
    """A comma-separated variable ("+44 7700 900123, sms:+1 555 0100") checked as a list."""
    return lambda value: check([part for part in str(value).split(",") if part.strip()])


def rate_limit(value: Any) -> str:
    from limits import parse_many  # flask-limiter's own parser, so both agree on the syntax

    text = string(value)
    try:
        if text and parse_many(text):
            return text
    except ValueError:
        pass
    raise ValueError('limits such as "6 per minute; 100 per day"')


def choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = string(value).lower()
        if text not in options:
            raise ValueError("one of " + ", ".join(f'"{option}"' for option in options))
        return text

    return check


def identifier(value: Any) -> str:
    """A label, property or index name: it is written into Cypher, so only a plain name."""
    text = string(value)
    plain = text[:1].isascii() and text[:1].isalpha() and len(text) <= 64
    if not plain or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in text):
        raise ValueError("a name of letters, digits and _ that starts with a letter")
    return text


def retrieval_query(value: Any) -> str:
    text = string(value)
    # The query's words, lower case: "c.text AS text," and "`score`" both count.
    spaced = "".join(ch if ch.isalnum() or ch == "_" else " " for ch in text.lower())
    if text and not {"return", "text", "source", "score"} <= set(spaced.split()):
        raise ValueError('"" or a Cypher query that RETURNs text, source and score')
    return text


COLLECTIONS_SHAPE = (
    'an object of collections and their readers, such as {"general": ["*"], '
    '"board": ["+447700900123"]}'
)


def collections(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """{"general": ["*"], "board": ["+44..."]} -> (("general", ("*",)), ("board", (...)))."""
    if not isinstance(value, dict):
        raise ValueError(COLLECTIONS_SHAPE)
    grants = []
    for name, members in value.items():
        try:
            collection_name(name)
        except ValueError:
            raise ValueError(f"{NAME_RULE}, not {json.dumps(name)}") from None
        try:
            grants.append((name, senders(members)))
        except ValueError as exc:
            raise ValueError(f"for {name!r}, {exc}") from None
    return tuple(grants)


def collection(value: Any) -> str:
    return collection_name(value)


def json_text(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A variable holding JSON ('{"general": ["*"]}') checked as its config key's value;
    text that is not JSON goes to `check` as it is, whose error says what is allowed."""

    def parse(value: Any) -> Any:
        try:
            decoded = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            decoded = value
        return check(decoded)

    return parse
