"""One loader for config.json + .env + environment: every key name lives here."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bot.text import normalise_number

logger = logging.getLogger(__name__)

# Twilio abandons a webhook after 15 s, connect time included; keep a second in hand.
MAX_RESPONSE_SECONDS = 14.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The Settings fields that hold secrets: never shown in errors, logs or /health.
SECRET_FIELDS = ("twilio_auth_token", "mistral_api_key", "neo4j_password", "database_url")


class ConfigError(Exception):
    """A configuration value is invalid; the message is the one line a maintainer reads."""


def exit_for(exc: ConfigError, code: int = 1) -> NoReturn:
    """Stop the process with the one line on stderr (no traceback) and a non-zero status."""
    print(f"Configuration error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(code)


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its configuration, validated and frozen."""

    config_path: str = "config.json"
    # twilio
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    whatsapp_number: str = ""
    trigger_words: tuple[str, ...] = ("@agent",)
    validate_signature: bool = True
    public_base_url: str = ""
    # whatsapp
    max_conversation_history: int = 10
    response_timeout_seconds: float = 12.0
    enable_group_chat: bool = False
    context_limit: int = 10  # 10 passages of ~600 characters fill a 6,000-character context
    require_mention: bool = True
    max_reply_messages: int = 3
    max_question_chars: int = 1000
    allowed_senders: tuple[str, ...] = ()
    admin_senders: tuple[str, ...] = ()
    rate_limit: str = "10 per minute; 200 per day"
    answer_cache_ttl_seconds: int = 86400  # 0 turns the answer cache off
    proxy_hops: int = 0
    # mistral
    mistral_api_key: str = ""
    mistral_model: str = "mistral-small-latest"
    mistral_server_url: str = ""
    # neo4j (used by the graph store)
    neo4j_uri: str = ""
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    neo4j_dialect: str = "auto"  # "neo4j", "falkordb", or detected on first connect
    neo4j_chunk_label: str = "Chunk"
    neo4j_document_label: str = "Document"
    neo4j_text_property: str = "text"
    neo4j_embedding_property: str = "embedding"
    neo4j_fulltext_index: str = "chunk_fulltext"
    neo4j_vector_index: str = "chunk_embedding"
    neo4j_retrieval_query: str = ""  # custom Cypher returning text, source, score
    neo4j_embeddings: bool = True  # mistral-embed vectors when a Mistral key is configured
    # process environment
    database_url: str = ""
    ratelimit_storage_uri: str = "memory://"
    data_dir: str = "data"
    log_level: str = "INFO"
    log_file: str = ""  # "" means DATA_DIR/whatsapp_agent.log
    port: int = 8000
    gunicorn_threads: int = 32  # threads per gunicorn worker; also sizes the model's HTTP pool
    web_concurrency: int = 0  # gunicorn worker processes; 0: not set (gunicorn.conf.py: 2)
    gunicorn_timeout: int = 30  # seconds before gunicorn restarts a silent worker
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # (variable, ".env" path or "environment") for each variable that set a value
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def origin(self, variable: str) -> str:
        """Where a variable's value came from, for error lines ("environment" by default)."""
        return dict(self.origins).get(variable, "environment")

    @property
    def workers(self) -> int:
        """The worker processes this deployment runs (1 unless WEB_CONCURRENCY says)."""
        return self.web_concurrency or 1

    def secrets(self) -> tuple[str, ...]:
        """The secret values set, for the log redactor (see SECRET_FIELDS)."""
        return tuple(v for v in (getattr(self, name) for name in SECRET_FIELDS) if v)

    @property
    def local_mode(self) -> bool:
        """No auth token: signatures cannot be checked, so only loopback clients are served."""
        return not self.twilio_auth_token


# --- value checkers: each returns the clean value or raises ValueError(what is allowed) ---


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError("true or false")


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return check


def _seconds(value: Any) -> float:
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("a string")
    return value.strip()


def _nonempty(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("a non-empty string")
    return text


# Schemes whose URL names no host: flask-limiter's per-process storage is "memory://".
HOSTLESS_SCHEMES = ("memory",)


def _url(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value)
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


def _public_base_url(value: Any) -> str:
    text = _url("https", "http")(value)
    if text and (urlsplit(text).query or urlsplit(text).fragment):
        raise ValueError("a base URL without query or fragment, e.g. https://bot.example.com")
    return text


def _trigger_words(value: Any) -> tuple[str, ...]:
    """Words or phrases ("hey agent"): a phrase's inner whitespace becomes one space."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError('a non-empty list of words or phrases, e.g. ["@agent", "hey agent"]')
    words = tuple(" ".join(w.split()) for w in value)
    if not words or not all(words):
        raise ValueError('a non-empty list of words or phrases, e.g. ["@agent", "hey agent"]')
    return tuple(dict.fromkeys(words))


def _log_level(value: Any) -> str:
    text = _text(value).upper()
    if text not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return text


def _whatsapp_number(value: Any) -> str:
    text = _text(value)
    bare = text.removeprefix("whatsapp:")
    if text and not (bare.startswith("+") and bare[1:].isdigit() and 8 <= len(bare) <= 16):
        raise ValueError('an E.164 number such as "whatsapp:+14155238886"')
    return text


# Channels a sender entry may name; a number without one is a WhatsApp number.
SENDER_CHANNELS = ("whatsapp", "sms")


def _sender(value: Any) -> str:
    """'whatsapp:+44 7700-900123' or '+44 7700-900123' -> 'whatsapp:+447700900123',
    'sms:+44...' stays an SMS sender; '*' stays '*'."""
    text = _text(value)
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


def _senders(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('a list of E.164 numbers such as ["+447700900123"], or ["*"]')
    return tuple(dict.fromkeys(_sender(v) for v in value))


def _admins(value: Any) -> tuple[str, ...]:
    admins = _senders(value)
    if "*" in admins:
        raise ValueError('a list of E.164 numbers such as ["+447700900123"] ("*" not allowed)')
    return admins


def _comma_list(check: Callable[[Any], tuple[str, ...]]) -> Callable[[Any], tuple[str, ...]]:
    """A comma-separated variable ("+44 7700 900123, sms:+1 555 0100") checked as a list."""
    return lambda value: check([part for part in str(value).split(",") if part.strip()])


def _rate_limit(value: Any) -> str:
    from limits import parse_many  # flask-limiter's own parser, so both agree on the syntax

    text = _text(value)
    try:
        if text and parse_many(text):
            return text
    except ValueError:
        pass
    raise ValueError('limits such as "6 per minute; 100 per day"')


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value).lower()
        if text not in options:
            raise ValueError("one of " + ", ".join(f'"{option}"' for option in options))
        return text

    return check


def _identifier(value: Any) -> str:
    """A label, property or index name: it is written into Cypher, so only a plain name."""
    text = _text(value)
    plain = text[:1].isascii() and text[:1].isalpha() and len(text) <= 64
    if not plain or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in text):
        raise ValueError("a name of letters, digits and _ that starts with a letter")
    return text


def _retrieval_query(value: Any) -> str:
    text = _text(value)
    # The query's words, lower case: "c.text AS text," and "`score`" both count.
    spaced = "".join(ch if ch.isalnum() or ch == "_" else " " for ch in text.lower())
    if text and not {"return", "text", "source", "score"} <= set(spaced.split()):
        raise ValueError('"" or a Cypher query that RETURNs text, source and score')
    return text


# config.json key -> (Settings field, checker). The seed product's keys come first.
CONFIG_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "twilio.account_sid": ("twilio_account_sid", _text),
    "twilio.auth_token": ("twilio_auth_token", _text),
    "twilio.whatsapp_number": ("whatsapp_number", _whatsapp_number),
    "twilio.bot_trigger_words": ("trigger_words", _trigger_words),
    "twilio.validate_signature": ("validate_signature", _bool),
    "twilio.public_base_url": ("public_base_url", _public_base_url),
    "whatsapp.max_conversation_history": ("max_conversation_history", _int(0, 1000)),
    "whatsapp.response_timeout_seconds": ("response_timeout_seconds", _seconds),
    "whatsapp.enable_group_chat": ("enable_group_chat", _bool),
    "whatsapp.context_limit": ("context_limit", _int(1, 50)),
    "whatsapp.require_mention": ("require_mention", _bool),
    "whatsapp.max_reply_messages": ("max_reply_messages", _int(1, 10)),
    "whatsapp.max_question_chars": ("max_question_chars", _int(20, 10000)),
    "whatsapp.allowed_senders": ("allowed_senders", _senders),
    "whatsapp.admin_senders": ("admin_senders", _admins),
    "whatsapp.rate_limit": ("rate_limit", _rate_limit),
    "whatsapp.answer_cache_ttl_seconds": ("answer_cache_ttl_seconds", _int(0, 31_536_000)),
    "twilio.proxy_hops": ("proxy_hops", _int(0, 5)),
    "mistral.api_key": ("mistral_api_key", _text),
    "mistral.model": ("mistral_model", _nonempty),
    "neo4j.uri": ("neo4j_uri", _url("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")),
    "neo4j.user": ("neo4j_user", _text),
    "neo4j.password": ("neo4j_password", _text),
    "neo4j.database": ("neo4j_database", _text),
    "neo4j.dialect": ("neo4j_dialect", _choice("auto", "neo4j", "falkordb")),
    "neo4j.chunk_label": ("neo4j_chunk_label", _identifier),
    "neo4j.document_label": ("neo4j_document_label", _identifier),
    "neo4j.text_property": ("neo4j_text_property", _identifier),
    "neo4j.embedding_property": ("neo4j_embedding_property", _identifier),
    "neo4j.fulltext_index": ("neo4j_fulltext_index", _identifier),
    "neo4j.vector_index": ("neo4j_vector_index", _identifier),
    "neo4j.retrieval_query": ("neo4j_retrieval_query", _retrieval_query),
    "neo4j.embeddings": ("neo4j_embeddings", _bool),
}

# Environment variable -> (Settings field, checker); these override config.json.
ENV_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", _text),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", _text),
    "PUBLIC_BASE_URL": ("public_base_url", _public_base_url),
    "MISTRAL_API_KEY": ("mistral_api_key", _text),
    "MISTRAL_SERVER_URL": ("mistral_server_url", _url("https", "http")),
    "DATABASE_URL": ("database_url", _url("postgres", "postgresql")),
    "NEO4J_URI": CONFIG_KEYS["neo4j.uri"],
    "NEO4J_USER": ("neo4j_user", _text),
    "NEO4J_PASSWORD": ("neo4j_password", _text),
    "NEO4J_DATABASE": ("neo4j_database", _text),
    "RATELIMIT_STORAGE_URI": ("ratelimit_storage_uri", _url("memory", "redis", "rediss")),
    "DATA_DIR": ("data_dir", _nonempty),
    "LOG_LEVEL": ("log_level", _log_level),
    "LOG_FILE": ("log_file", _text),
    "PORT": ("port", _int(1, 65535)),
    "GUNICORN_THREADS": ("gunicorn_threads", _int(1, 1000)),
    "WEB_CONCURRENCY": ("web_concurrency", _int(1, 64)),
    # Above the reply budget (at most 14 s): a worker silent for longer is stuck, not busy.
    "GUNICORN_TIMEOUT": ("gunicorn_timeout", _int(15, 3600)),
    # The access lists, so phone numbers need not be committed to git in config.json.
    "ALLOWED_SENDERS": ("allowed_senders", _comma_list(_senders)),
    "ADMIN_SENDERS": ("admin_senders", _comma_list(_admins)),
}
# config.json keys that hold a secret: they work, with a warning to move them.
SECRET_KEYS = tuple(key for key, (name, _) in CONFIG_KEYS.items() if name in SECRET_FIELDS)


def _shown(field_name: str, value: Any) -> str:
    """The value as an error message may show it: secrets never appear."""
    return "<hidden>" if field_name in SECRET_FIELDS else json.dumps(value, ensure_ascii=False)


def _read_config(path: Path) -> dict[str, Any]:
    """Parse config.json; a missing file means all defaults."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


def _flatten(data: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any]:
    """{"twilio": {"x": 1}} -> {"twilio.x": 1}; unknown keys become warnings, not errors."""
    flat: dict[str, Any] = {}
    sections = {key.split(".")[0] for key in CONFIG_KEYS}
    for section, values in data.items():
        if section not in sections:
            warnings.append(f"{path}: unknown section {section!r} ignored")
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} = {_shown('', values)}: must be an object")
        for key, value in values.items():
            name = f"{section}.{key}"
            if name in CONFIG_KEYS:
                flat[name] = value
            else:
                warnings.append(f"{path}: unknown key {name!r} ignored")
    return flat


def _variables(
    environ: Mapping[str, str], dotenv_path: str | Path | None
) -> dict[str, tuple[str, str]]:
    """NAME -> (value, where it came from): .env first, then the process environment, where
    an empty value counts as unset (so it never hides a value in .env)."""
    found: dict[str, tuple[str, str]] = {}
    if dotenv_path and Path(dotenv_path).is_file():
        for name, value in dotenv_values(dotenv_path).items():
            if value:
                found[name] = (value, str(dotenv_path))
    for name, value in environ.items():
        if value:
            found[name] = (value, "environment")
    return found


# Render sets this to the service's own https URL: the signature check's URL until the
# operator sets PUBLIC_BASE_URL (or twilio.public_base_url).
RENDER_URL_VARIABLE = "RENDER_EXTERNAL_URL"


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Build Settings from config.json, then .env, then the process environment."""
    import os

    env = _variables(os.environ if environ is None else environ, dotenv_path)
    config_value, config_origin = env.get("CONFIG_PATH", ("", ""))
    config_path = Path(config_value or "config.json")
    if config_value and not config_path.is_file():
        # An explicit path that is missing is a mistake, not a wish for the defaults.
        raise ConfigError(f"{config_origin}: CONFIG_PATH = {config_value!r}: file not found")
    warnings: list[str] = []
    values: dict[str, Any] = {"config_path": str(config_path)}

    for name, raw in _flatten(_read_config(config_path), config_path, warnings).items():
        field_name, check = CONFIG_KEYS[name]
        try:
            values[field_name] = check(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{config_path}: {name} = {_shown(field_name, raw)}: expected {exc}"
            ) from None
        if name in SECRET_KEYS and values[field_name]:
            warnings.append(
                f"{config_path}: {name} holds a secret; move it to the environment or .env"
            )

    origins: dict[str, str] = {}
    for name, (field_name, check) in ENV_KEYS.items():
        if name not in env:
            continue
        raw, origin = env[name]
        try:
            values[field_name] = check(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{origin}: {name} = {_shown(field_name, raw)}: expected {exc}"
            ) from None
        origins[name] = origin

    if not values.get("public_base_url") and RENDER_URL_VARIABLE in env:
        raw, origin = env[RENDER_URL_VARIABLE]
        try:
            values["public_base_url"] = _public_base_url(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{origin}: {RENDER_URL_VARIABLE} = {raw!r}: expected {exc}"
            ) from None
        warnings.append(
            f"PUBLIC_BASE_URL is not set: signatures are checked against {RENDER_URL_VARIABLE}"
            f" = {values['public_base_url']} (set PUBLIC_BASE_URL if Twilio calls another URL)"
        )

    timeout = values.get("response_timeout_seconds", Settings.response_timeout_seconds)
    if timeout > MAX_RESPONSE_SECONDS:
        warnings.append(
            f"{config_path}: whatsapp.response_timeout_seconds = {timeout:g} clamped to "
            f"{MAX_RESPONSE_SECONDS:g} (Twilio gives up at 15 s)"
        )
        values["response_timeout_seconds"] = MAX_RESPONSE_SECONDS
    return Settings(**values, warnings=tuple(warnings), origins=tuple(origins.items()))


def shared_limits_warning(settings: Settings) -> str:
    """Why rate limits are not shared, when memory:// meets several workers; "" otherwise."""
    if settings.ratelimit_storage_uri.startswith("memory") and settings.workers > 1:
        return (
            f"rate limits in memory with {settings.workers} workers: each counts alone; "
            "set RATELIMIT_STORAGE_URI=redis://... to share them"
        )
    return ""


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """Settings with some fields replaced (tests and the CLI use this)."""
    return replace(settings, **overrides)
