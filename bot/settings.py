"""One loader for config.json + .env + environment: every key name lives here."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from dotenv import dotenv_values

from bot import config_values as v
from bot.readers import DEFAULT_COLLECTION, Readers

logger = logging.getLogger(__name__)

# Twilio abandons a webhook after 15 s, connect time included; keep a second in hand.
MAX_RESPONSE_SECONDS = 14.0
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
    # The only origin inbound media is fetched from with the account's credentials.
    twilio_media_base_url: str = "https://api.twilio.com"
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
    mistral_transcription_model: str = "voxtral-mini-latest"  # voice notes
    # neo4j (used by the graph store)
    neo4j_uri: str = ""
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    neo4j_dialect: str = "auto"  # "neo4j", "falkordb", or detected on first connect
    neo4j_chunk_label: str = "Chunk"
    neo4j_document_label: str = "Document"
    neo4j_person_label: str = "Person"
    neo4j_text_property: str = "text"
    neo4j_embedding_property: str = "embedding"
    neo4j_fulltext_index: str = "chunk_fulltext"
    neo4j_vector_index: str = "chunk_embedding"
    neo4j_retrieval_query: str = ""  # custom Cypher returning text, source, score
    neo4j_embeddings: bool = True  # mistral-embed vectors when a Mistral key is configured
    knowledge_relevance_floor: bool = False  # "not found" for a question too little covered
    # Who reads which collection (bot/readers.py): empty, everyone reads everything.
    knowledge_collections: tuple[tuple[str, tuple[str, ...]], ...] = ()
    knowledge_default_collection: str = DEFAULT_COLLECTION  # ingest's and the phone's
    # process environment
    database_url: str = ""
    ratelimit_storage_uri: str = "memory://"
    data_dir: str = "data"
    log_level: str = "INFO"
    log_file: str = ""  # "" means DATA_DIR/whatsapp_agent.log
    port: int = 8000
    # Threads per gunicorn worker (also sizes the model's HTTP pool): 2 x 128 hold 200
    # conversations in flight on a 512 MB instance (docs/PERFORMANCE.md).
    gunicorn_threads: int = 128
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
    def readers(self) -> Readers:
        """Who reads which collection."""
        return Readers(self.knowledge_collections)

    @property
    def local_mode(self) -> bool:
        """No auth token: signatures cannot be checked, so only loopback clients are served."""
        return not self.twilio_auth_token


# config.json key -> (Settings field, checker). The seed product's keys come first.
CONFIG_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "twilio.account_sid": ("twilio_account_sid", v.string),
    "twilio.auth_token": ("twilio_auth_token", v.string),
    "twilio.whatsapp_number": ("whatsapp_number", v.whatsapp_number),
    "twilio.bot_trigger_words": ("trigger_words", v.trigger_words),
    "twilio.validate_signature": ("validate_signature", v.boolean),
    "twilio.public_base_url": ("public_base_url", v.public_base_url),
    "twilio.media_base_url": ("twilio_media_base_url", v.media_base_url),
    "whatsapp.max_conversation_history": ("max_conversation_history", v.whole_number(0, 1000)),
    "whatsapp.response_timeout_seconds": ("response_timeout_seconds", v.seconds),
    "whatsapp.enable_group_chat": ("enable_group_chat", v.boolean),
    "whatsapp.context_limit": ("context_limit", v.whole_number(1, 50)),
    "whatsapp.require_mention": ("require_mention", v.boolean),
    "whatsapp.max_reply_messages": ("max_reply_messages", v.whole_number(1, 10)),
    "whatsapp.max_question_chars": ("max_question_chars", v.whole_number(20, 10000)),
    "whatsapp.allowed_senders": ("allowed_senders", v.senders),
    "whatsapp.admin_senders": ("admin_senders", v.admins),
    "whatsapp.rate_limit": ("rate_limit", v.rate_limit),
    "whatsapp.answer_cache_ttl_seconds": (
        "answer_cache_ttl_seconds",
        v.whole_number(0, 31_536_000),
    ),
    "twilio.proxy_hops": ("proxy_hops", v.whole_number(0, 5)),
    "mistral.api_key": ("mistral_api_key", v.string),
    "mistral.model": ("mistral_model", v.nonempty),
    "mistral.transcription_model": ("mistral_transcription_model", v.nonempty),
    "neo4j.uri": (
        "neo4j_uri",
        v.url("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"),
    ),
    "neo4j.user": ("neo4j_user", v.string),
    "neo4j.password": ("neo4j_password", v.string),
    "neo4j.database": ("neo4j_database", v.string),
    "neo4j.dialect": ("neo4j_dialect", v.choice("auto", "neo4j", "falkordb")),
    "neo4j.chunk_label": ("neo4j_chunk_label", v.identifier),
    "neo4j.document_label": ("neo4j_document_label", v.identifier),
    "neo4j.person_label": ("neo4j_person_label", v.identifier),
    "neo4j.text_property": ("neo4j_text_property", v.identifier),
    "neo4j.embedding_property": ("neo4j_embedding_property", v.identifier),
    "neo4j.fulltext_index": ("neo4j_fulltext_index", v.identifier),
    "neo4j.vector_index": ("neo4j_vector_index", v.identifier),
    "neo4j.retrieval_query": ("neo4j_retrieval_query", v.retrieval_query),
    "neo4j.embeddings": ("neo4j_embeddings", v.boolean),
    "knowledge.relevance_floor": ("knowledge_relevance_floor", v.boolean),
    "knowledge.collections": ("knowledge_collections", v.collections),
    "knowledge.default_collection": ("knowledge_default_collection", v.collection),
}

# Environment variable -> (Settings field, checker); these override config.json.
ENV_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", v.string),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", v.string),
    "PUBLIC_BASE_URL": ("public_base_url", v.public_base_url),
    "MISTRAL_API_KEY": ("mistral_api_key", v.string),
    "MISTRAL_SERVER_URL": ("mistral_server_url", v.url("https", "http")),
    "DATABASE_URL": ("database_url", v.url("postgres", "postgresql")),
    "NEO4J_URI": CONFIG_KEYS["neo4j.uri"],
    "NEO4J_USER": ("neo4j_user", v.string),
    "NEO4J_PASSWORD": ("neo4j_password", v.string),
    "NEO4J_DATABASE": ("neo4j_database", v.string),
    "RATELIMIT_STORAGE_URI": ("ratelimit_storage_uri", v.url("memory", "redis", "rediss")),
    "DATA_DIR": ("data_dir", v.nonempty),
    "LOG_LEVEL": ("log_level", v.log_level),
    "LOG_FILE": ("log_file", v.string),
    "PORT": ("port", v.whole_number(1, 65535)),
    "GUNICORN_THREADS": ("gunicorn_threads", v.whole_number(1, 1000)),
    "WEB_CONCURRENCY": ("web_concurrency", v.whole_number(1, 64)),
    # Above the reply budget (at most 14 s): a worker silent for longer is stuck, not busy.
    "GUNICORN_TIMEOUT": ("gunicorn_timeout", v.whole_number(15, 3600)),
    # The access lists, so phone numbers need not be committed to git in config.json.
    "ALLOWED_SENDERS": ("allowed_senders", v.comma_list(v.senders)),
    "ADMIN_SENDERS": ("admin_senders", v.comma_list(v.admins)),
    # knowledge.collections as one JSON object: who reads what, numbers out of git too.
    "KNOWLEDGE_COLLECTIONS": ("knowledge_collections", v.json_text(v.collections)),
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
            values["public_base_url"] = v.public_base_url(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{origin}: {RENDER_URL_VARIABLE} = {raw!r}: expected {exc}"
            ) from None
        warnings.append(
            f"PUBLIC_BASE_URL is not set: signatures are checked against {RENDER_URL_VARIABLE}"
            f" = {values['public_base_url']} (set PUBLIC_BASE_URL if Twilio calls another URL)"
        )

    _check_collections(values, config_path, origins)
    timeout = values.get("response_timeout_seconds", Settings.response_timeout_seconds)
    if timeout > MAX_RESPONSE_SECONDS:
        warnings.append(
            f"{config_path}: whatsapp.response_timeout_seconds = {timeout:g} clamped to "
            f"{MAX_RESPONSE_SECONDS:g} (Twilio gives up at 15 s)"
        )
        values["response_timeout_seconds"] = MAX_RESPONSE_SECONDS
    return Settings(**values, warnings=tuple(warnings), origins=tuple(origins.items()))


def _check_collections(values: dict[str, Any], config_path: Path, origins: dict[str, str]) -> None:
    """The rules between keys once collections restrict readers: new documents go to a
    configured collection, and a custom Cypher retrieval filters by the sender's."""
    grants = values.get("knowledge_collections", ())
    if not grants:
        return
    # Where the collections came from, named in the line: a maintainer looks there.
    from_env = "KNOWLEDGE_COLLECTIONS" in origins
    source = "KNOWLEDGE_COLLECTIONS" if from_env else "knowledge.collections"
    names = [name for name, _ in grants]
    default = values.get("knowledge_default_collection", Settings.knowledge_default_collection)
    if default not in names:
        listed = ", ".join(json.dumps(name) for name in names)
        raise ConfigError(
            f"{config_path}: knowledge.default_collection = {json.dumps(default)}: expected "
            f"one of the collections {source} sets ({listed}), where ingest and the phone "
            "put new documents"
        )
    query = values.get("neo4j_retrieval_query", "")
    # Without the parameter, a custom query would hand every sender every collection.
    if query and not re.search(r"\$collections\b", query):
        raise ConfigError(
            f"{config_path}: neo4j.retrieval_query = {json.dumps(query, ensure_ascii=False)}: "
            f"expected a query that keeps only the documents of $collections while {source} "
            "is set"
        )


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
