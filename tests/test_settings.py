"""The configuration loader: every invalid value stops start-up with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import CONFIG_KEYS, ENV_KEYS, SECRET_KEYS, ConfigError, load_settings

# The seed product's config.json shape, as maintainers have it today.
SEED_CONFIG = {
    "twilio": {
        "account_sid": "your_twilio_account_sid",
        "auth_token": "your_twilio_auth_token",
        "whatsapp_number": "whatsapp:+14155238886",
        "bot_trigger_words": ["@agent", "@bot", "hey agent"],
    },
    "whatsapp": {
        "max_conversation_history": 10,
        "response_timeout_seconds": 30,
        "enable_group_chat": True,
        "context_limit": 5,
    },
    "mistral": {"api_key": "your_mistral_api_key", "model": "mistral-large-latest"},
    "neo4j": {
        "uri": "neo4j+s://xxxx.databases.neo4j.io",
        "user": "neo4j",
        "password": "your_neo4j_password",
        "database": "neo4j",
    },
}

# (config key, invalid value, words the error must contain about what is allowed)
INVALID_CONFIG = [
    ("twilio.account_sid", 42, "a string"),
    ("twilio.auth_token", ["x"], "a string"),
    ("twilio.whatsapp_number", "14155238886", "E.164"),
    ("twilio.whatsapp_number", "whatsapp:+1", "E.164"),
    ("twilio.bot_trigger_words", [], "non-empty list"),
    ("twilio.bot_trigger_words", ["@agent", ""], "non-empty list"),
    ("twilio.bot_trigger_words", ["@agent", "   "], "non-empty list"),
    ("twilio.bot_trigger_words", ["@agent", 3], "words or phrases"),
    ("twilio.bot_trigger_words", 7, "non-empty list"),
    ("twilio.validate_signature", "maybe", "true or false"),
    ("twilio.public_base_url", "bot.example.com", "https://"),
    ("twilio.public_base_url", "https://bot.example.com/?x=1", "without query"),
    ("twilio.media_base_url", "http://api.twilio.com", "http:// only for 127.0.0.1"),
    ("twilio.media_base_url", "https://api.twilio.com/2010-04-01", "without path"),
    ("twilio.media_base_url", "https://AC1:secret@api.twilio.com", "credentials"),
    ("twilio.media_base_url", "", "an https:// origin"),
    ("whatsapp.max_conversation_history", -1, "0 to 1000"),
    ("whatsapp.max_conversation_history", "ten", "whole number"),
    ("whatsapp.max_conversation_history", 2.5, "whole number"),
    ("whatsapp.response_timeout_seconds", 0, "greater than 0"),
    ("whatsapp.response_timeout_seconds", "soon", "seconds"),
    ("whatsapp.response_timeout_seconds", True, "seconds"),
    ("whatsapp.enable_group_chat", "yes please", "true or false"),
    ("whatsapp.context_limit", 0, "1 to 50"),
    ("whatsapp.context_limit", 500, "1 to 50"),
    ("whatsapp.require_mention", 3, "true or false"),
    ("whatsapp.max_reply_messages", 0, "1 to 10"),
    ("whatsapp.max_reply_messages", 11, "1 to 10"),
    ("whatsapp.max_question_chars", 5, "20 to 10000"),
    ("whatsapp.allowed_senders", "+447700900123", "a list of E.164"),
    ("whatsapp.allowed_senders", ["07700 900123"], "E.164 numbers"),
    ("whatsapp.allowed_senders", ["messenger:+447700900123"], "sms:+"),
    ("whatsapp.admin_senders", ["*"], '"*" not allowed'),
    ("whatsapp.admin_senders", [12], "a string"),
    ("whatsapp.rate_limit", "lots per minute", "6 per minute; 100 per day"),
    ("whatsapp.rate_limit", "", "6 per minute"),
    ("whatsapp.answer_cache_ttl_seconds", -1, "0 to 31536000"),
    ("twilio.proxy_hops", 9, "0 to 5"),
    ("mistral.api_key", 1234, "a string"),
    ("mistral.model", "", "non-empty"),
    ("mistral.model", None, "non-empty"),
    ("mistral.transcription_model", "", "non-empty"),
    ("neo4j.uri", "http://localhost:7474", "bolt://"),
    ("neo4j.user", 5, "a string"),
    ("neo4j.password", 5, "a string"),
    ("neo4j.database", [], "a string"),
    ("neo4j.dialect", "memgraph", 'one of "auto", "neo4j", "falkordb"'),
    ("neo4j.chunk_label", "Chunk`) DETACH DELETE (n", "letters, digits and _"),
    ("neo4j.document_label", "", "letters, digits and _"),
    ("neo4j.person_label", "Per son", "letters, digits"),
    ("neo4j.text_property", "2text", "starts with a letter"),
    ("neo4j.embedding_property", "vec tor", "letters, digits and _"),
    ("neo4j.fulltext_index", 7, "a string"),
    ("neo4j.vector_index", "vector-index", "letters, digits and _"),
    ("neo4j.retrieval_query", "MATCH (c:Chunk) RETURN c.text", "RETURNs text, source and score"),
    ("neo4j.embeddings", "sometimes", "true or false"),
    ("knowledge.relevance_floor", "yes", "true or false"),
    ("knowledge.collections", ["general", "board"], "an object of collections and their readers"),
    ("knowledge.collections", {"Board": ["*"]}, "lower-case letters, digits, - and _ (up to 40)"),
    ("knowledge.collections", {"hr team": ["*"]}, 'such as board, not "hr team"'),
    ("knowledge.collections", {"board": "+447700900123"}, "for 'board', a list of E.164"),
    ("knowledge.collections", {"board": ["07700 900123"]}, "for 'board', E.164 numbers"),
    ("knowledge.default_collection", "Board minutes", "a collection name of lower-case"),
    ("knowledge.default_collection", "", "a collection name"),
    ("knowledge.default_collection", 7, "a collection name"),
]

INVALID_ENV = [
    ("PUBLIC_BASE_URL", "ftp://x.example.com", "https://"),
    ("MISTRAL_SERVER_URL", "localhost:9999", "http://"),
    ("DATABASE_URL", "mysql://u@h/db", "postgres://"),
    ("NEO4J_URI", "localhost:7687", "bolt://"),
    ("RATELIMIT_STORAGE_URI", "memcached://h", "redis://"),
    ("RATELIMIT_STORAGE_URI", "memory:", "memory://"),
    ("RATELIMIT_STORAGE_URI", "redis://", "redis://"),
    ("NEO4J_URI", "bolt://[::1", "bolt://"),
    ("LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("PORT", "eighty", "whole number"),
    ("PORT", "70000", "1 to 65535"),
    ("GUNICORN_THREADS", "many", "whole number"),
    ("GUNICORN_THREADS", "0", "1 to 1000"),
    ("WEB_CONCURRENCY", "two", "whole number"),
    ("GUNICORN_TIMEOUT", "10", "15 to 3600"),
    ("ALLOWED_SENDERS", "+447700900123, 07700 900124", "E.164 numbers"),
    ("ADMIN_SENDERS", "+447700900123,*", '"*" not allowed'),
    ("KNOWLEDGE_COLLECTIONS", "board", "an object of collections"),
    ("KNOWLEDGE_COLLECTIONS", '{"general": ["*"]', "an object of collections"),  # cut short
    ("KNOWLEDGE_COLLECTIONS", '{"board": ["07700 900123"]}', "for 'board', E.164 numbers"),
    ("KNOWLEDGE_COLLECTIONS", '{"Board": []}', 'such as board, not "Board"'),
]


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def load(path: Path, **env: str):
    return load_settings({"CONFIG_PATH": str(path), **env}, dotenv_path=None)


def test_the_table_covers_every_key_the_loader_knows():
    assert {key for key, _, _ in INVALID_CONFIG} == set(CONFIG_KEYS)
    tested_env = {name for name, _, _ in INVALID_ENV}
    # Plain-text variables accept any string; every variable with a rule is in the table.
    plain = {name for name, (_, check) in ENV_KEYS.items() if check.__name__ == "string"}
    assert tested_env | plain | {"DATA_DIR"} == set(ENV_KEYS)


@pytest.mark.parametrize(("key", "value", "allowed"), INVALID_CONFIG)
def test_invalid_config_value_is_one_line_naming_file_key_value_and_rule(
    tmp_path, key, value, allowed
):
    section, name = key.split(".")
    path = write_config(tmp_path, {section: {name: value}})
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key} = ")
    assert allowed in message
    secret = key in SECRET_KEYS
    assert ("<hidden>" in message) == secret
    if not secret:
        assert json.dumps(value) in message


@pytest.mark.parametrize(("name", "value", "allowed"), INVALID_ENV)
def test_invalid_environment_value_names_the_variable(tmp_path, name, value, allowed):
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, {}), **{name: value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"environment: {name} = ")
    assert allowed in message


def test_secret_values_never_appear_in_errors(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, {}), DATABASE_URL="mysql://user:hunter2@db/x")
    assert "hunter2" not in str(caught.value)


def test_seed_config_loads_unchanged_with_warnings(tmp_path):
    settings = load(write_config(tmp_path, SEED_CONFIG))
    assert settings.trigger_words == ("@agent", "@bot", "hey agent")
    assert settings.max_conversation_history == 10
    assert settings.enable_group_chat is True
    assert settings.context_limit == 5
    assert settings.mistral_model == "mistral-large-latest"
    assert settings.neo4j_uri == "neo4j+s://xxxx.databases.neo4j.io"
    # 30 s is past Twilio's 15 s deadline: clamped, with a warning.
    assert settings.response_timeout_seconds == 14.0
    assert any("clamped to 14" in w for w in settings.warnings)
    # Secrets in config.json still work, with a warning to move them.
    assert settings.twilio_auth_token == "your_twilio_auth_token"
    assert any("mistral.api_key holds a secret" in w for w in settings.warnings)


def test_shipped_config_json_loads_without_warnings():
    settings = load(Path(__file__).resolve().parents[1] / "config.json")
    assert settings.warnings == ()
    assert settings.local_mode


def test_environment_overrides_config_and_dotenv(tmp_path):
    path = write_config(tmp_path, {"mistral": {"model": "m", "api_key": ""}})
    dotenv = tmp_path / ".env"
    dotenv.write_text("MISTRAL_API_KEY=from-dotenv\nLOG_LEVEL=debug\nPORT=9000\n")
    settings = load_settings({"CONFIG_PATH": str(path), "PORT": "8123"}, dotenv_path=dotenv)
    assert settings.mistral_api_key == "from-dotenv"
    assert settings.log_level == "DEBUG"
    assert settings.port == 8123


def test_an_empty_variable_never_hides_a_value_from_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nLOG_LEVEL=debug\n")
    path = write_config(tmp_path, {})
    settings = load_settings({"CONFIG_PATH": str(path), "PORT": ""}, dotenv_path=dotenv)
    assert (settings.port, settings.log_level) == (9000, "DEBUG")


def test_an_error_names_dotenv_when_the_value_came_from_it(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=eighty\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_PATH": str(write_config(tmp_path, {}))}, dotenv_path=dotenv)
    assert (
        str(caught.value) == f'{dotenv}: PORT = "eighty": expected a whole number from 1 to 65535'
    )
    dotenv.write_text(f"CONFIG_PATH={tmp_path / 'absent.json'}\n")
    with pytest.raises(ConfigError, match=rf"^{dotenv}: CONFIG_PATH = .*: file not found"):
        load_settings({}, dotenv_path=dotenv)


def test_access_lists_come_from_the_environment_over_config_json(tmp_path):
    path = write_config(
        tmp_path, {"whatsapp": {"allowed_senders": ["*"], "admin_senders": ["+447700900999"]}}
    )
    settings = load(
        path, ALLOWED_SENDERS=" +44 7700-900123 , sms:+447700900124,", ADMIN_SENDERS="+447700900125"
    )
    assert settings.allowed_senders == ("whatsapp:+447700900123", "sms:+447700900124")
    assert settings.admin_senders == ("whatsapp:+447700900125",)


def test_render_external_url_stands_in_for_an_unset_public_base_url(tmp_path):
    path = write_config(tmp_path, {})
    render = "https://whatsapp-knowledge-bot.onrender.com"
    settings = load(path, RENDER_EXTERNAL_URL=render)
    assert settings.public_base_url == render
    assert any("RENDER_EXTERNAL_URL" in w for w in settings.warnings)
    explicit = load(path, RENDER_EXTERNAL_URL=render, PUBLIC_BASE_URL="https://bot.example.com")
    assert explicit.public_base_url == "https://bot.example.com" and explicit.warnings == ()


def test_unknown_keys_warn_instead_of_failing(tmp_path):
    path = write_config(tmp_path, {"whatsapp": {"max_conversaton_history": 3}, "extra": {}})
    settings = load(path)
    assert any("max_conversaton_history" in w for w in settings.warnings)
    assert any("'extra'" in w for w in settings.warnings)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("{not json", "invalid JSON at line 1"), ("[1, 2]", "must be a JSON object")],
)
def test_broken_config_file_is_one_line(tmp_path, content, expected):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        load(path)
    assert "\n" not in str(caught.value)


def started(path: Path, tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    """`python COMMAND...` in the repository with CONFIG_PATH=path, as a maintainer starts it."""
    return subprocess.run(
        [sys.executable, *command],
        cwd=Path(__file__).resolve().parents[1],
        env={"CONFIG_PATH": str(path), "DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_app_import_with_bad_config_exits_with_one_line(tmp_path):
    path = write_config(tmp_path, {"whatsapp": {"context_limit": 0}})
    result = started(path, tmp_path, "-c", "import app")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Configuration error: {path}: whatsapp.context_limit = 0: "
        "expected a whole number from 1 to 50"
    ]


def test_sender_lists_are_normalised(tmp_path):
    path = write_config(
        tmp_path,
        {
            "whatsapp": {
                "allowed_senders": [
                    "+44 7700-900123",
                    "whatsapp:+15555550100",
                    "*",
                    "SMS:+1 555-0100",
                ]
            }
        },
    )
    assert load(path).allowed_senders == (
        "whatsapp:+447700900123",
        "whatsapp:+15555550100",
        "*",
        "sms:+15550100",
    )


def test_an_explicit_config_path_that_is_missing_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="CONFIG_PATH = .*: file not found"):
        load(tmp_path / "absent.json")


# The README's example: everyone reads general, two numbers also read board.
COLLECTIONS = {"general": ["*"], "board": ["+44 7700 900123", "+447700900124"]}
BOARD = ("whatsapp:+447700900123", "whatsapp:+447700900124")


def test_the_documented_collections_load_and_grant_the_union(tmp_path):
    path = write_config(tmp_path, {"knowledge": {"collections": COLLECTIONS}})
    settings = load(path)
    assert settings.knowledge_collections == (("general", ("*",)), ("board", BOARD))
    assert settings.knowledge_default_collection == "general"
    assert settings.readers.readable(BOARD[0]) == {"general", "board"}
    assert settings.readers.readable("whatsapp:+447700900999") == {"general"}
    # Without collections, everyone reads everything, as before they existed.
    assert load(write_config(tmp_path, {})).readers.readable(BOARD[0]) is None


def test_collections_come_from_the_environment_over_config_json(tmp_path):
    path = write_config(tmp_path, {"knowledge": {"collections": {"general": ["*"]}}})
    settings = load(path, KNOWLEDGE_COLLECTIONS=json.dumps(COLLECTIONS))
    assert settings.knowledge_collections == (("general", ("*",)), ("board", BOARD))


# A Cypher query that names every column the loader asks for, and whether it filters.
UNFILTERED = "CALL db.index.fulltext.queryNodes('c', $query) YIELD node, score " + (
    "RETURN node.text AS text, node.title AS source, score"
)
FILTERED = UNFILTERED.replace(
    "YIELD node, score", "YIELD node, score MATCH (d)-->(node) WHERE d.collection IN $collections"
)


@pytest.mark.parametrize(
    ("knowledge", "neo4j", "env", "line"),
    [
        (
            {"collections": {"board": ["+447700900123"]}},
            {},
            {},
            'knowledge.default_collection = "general": expected one of the collections '
            'knowledge.collections sets ("board"), where ingest and the phone put new documents',
        ),
        (
            {"collections": {"general": ["*"]}, "default_collection": "minutes"},
            {},
            {"KNOWLEDGE_COLLECTIONS": '{"board": ["*"], "hr": []}'},
            'knowledge.default_collection = "minutes": expected one of the collections '
            'KNOWLEDGE_COLLECTIONS sets ("board", "hr"), where ingest and the phone put new '
            "documents",
        ),
        (
            {"collections": {"general": ["*"]}},
            {"retrieval_query": UNFILTERED},
            {},
            f"neo4j.retrieval_query = {json.dumps(UNFILTERED)}: expected a query that keeps only "
            "the documents of $collections while knowledge.collections is set",
        ),
        (
            {},
            {"retrieval_query": UNFILTERED.replace("$query", "$collectionsX")},
            {"KNOWLEDGE_COLLECTIONS": '{"general": ["*"]}'},
            "neo4j.retrieval_query = ",
        ),
    ],
)
def test_keys_that_disagree_with_the_collections_stop_start_up_in_one_line(
    tmp_path, knowledge, neo4j, env, line
):
    path = write_config(tmp_path, {"knowledge": knowledge, "neo4j": neo4j})
    with pytest.raises(ConfigError) as caught:
        load(path, **env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {line}")


def test_a_filtering_retrieval_query_and_any_query_without_collections_load(tmp_path):
    both = {
        "knowledge": {"collections": {"general": ["*"]}},
        "neo4j": {"retrieval_query": FILTERED},
    }
    assert load(write_config(tmp_path, both)).neo4j_retrieval_query == FILTERED
    alone = {"neo4j": {"retrieval_query": UNFILTERED}}
    assert load(write_config(tmp_path, alone)).knowledge_collections == ()


def test_a_flask_command_stops_in_one_line_on_a_query_that_ignores_collections(tmp_path):
    config = {
        "knowledge": {"collections": {"general": ["*"]}},
        "neo4j": {"retrieval_query": UNFILTERED},
    }
    path = write_config(tmp_path, config)
    result = started(path, tmp_path, "-m", "flask", "--app", "app", "documents")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Configuration error: {path}: neo4j.retrieval_query = ")
    assert line.endswith("while knowledge.collections is set")
