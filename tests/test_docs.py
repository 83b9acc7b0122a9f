"""The docs, config.json, .env.example and render.yaml name everything the code reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bot.settings import CONFIG_KEYS, ENV_KEYS
from tests.support import REPO

CONFIGURATION = REPO / "docs" / "CONFIGURATION.md"
ENV_VARIABLES = sorted({*ENV_KEYS, "CONFIG_PATH"})  # CONFIG_PATH is read before the others
RENDER_SECRETS = (
    "TWILIO_AUTH_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "MISTRAL_API_KEY",
    "PUBLIC_BASE_URL",
    "NEO4J_PASSWORD",
    "DATABASE_URL",
    "ALLOWED_SENDERS",  # phone numbers: asked for on creation, never in git
    "ADMIN_SENDERS",
    "KNOWLEDGE_COLLECTIONS",  # numbers too, per collection
)
# [text](target) outside code; the target ends at whitespace or ")".
_LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _documented(text: str, name: str) -> bool:
    """`name` appears as a whole word (so LOG_FILE does not count for LOG_FILE_X)."""
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) is not None


def _env_example_names() -> set[str]:
    """Variables assigned in .env.example, commented-out ones included (`# NAME=`)."""
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def _config_json_keys() -> set[str]:
    data = json.loads((REPO / "config.json").read_text(encoding="utf-8"))
    return {f"{section}.{key}" for section, values in data.items() for key in values}


@pytest.mark.parametrize("name", ENV_VARIABLES)
def test_every_environment_variable_is_documented_and_in_env_example(name):
    assert _documented(CONFIGURATION.read_text(encoding="utf-8"), name), (
        f"{name} is read by bot/settings.py but missing from docs/CONFIGURATION.md"
    )
    assert name in _env_example_names(), f"{name} is missing from .env.example"


@pytest.mark.parametrize("key", sorted(CONFIG_KEYS))
def test_every_config_key_is_documented_and_in_config_json(key):
    assert _documented(CONFIGURATION.read_text(encoding="utf-8"), key), (
        f"{key} is read by bot/settings.py but missing from docs/CONFIGURATION.md"
    )
    assert key in _config_json_keys(), f"{key} is missing from config.json"


def _render_service() -> dict:
    blueprint = yaml.safe_load((REPO / "render.yaml").read_text(encoding="utf-8"))
    web = [s for s in blueprint["services"] if s.get("type") == "web"]
    assert len(web) == 1, "render.yaml should define exactly one web service"
    return web[0]


def test_render_yaml_checks_health_and_starts_gunicorn_with_its_config():
    service = _render_service()
    assert service["healthCheckPath"] == "/health"
    start = service["startCommand"]
    assert re.search(r"\bgunicorn\b.*(-c|--config)\s+gunicorn\.conf\.py\b.*\bapp:app\b", start)
    assert (REPO / "gunicorn.conf.py").is_file()


def test_render_yaml_never_ingests_the_fictional_sample():
    service = _render_service()
    commands = " ".join(str(service.get(key, "")) for key in ("buildCommand", "startCommand"))
    assert "knowledge/sample" not in commands and "ingest" not in commands


def test_render_yaml_database_accepts_internal_connections_only():
    blueprint = yaml.safe_load((REPO / "render.yaml").read_text(encoding="utf-8"))
    (database,) = blueprint["databases"]
    # An empty list: no source outside Render's private network (no list: any source).
    assert database["ipAllowList"] == []


@pytest.mark.parametrize("name", RENDER_SECRETS)
def test_render_yaml_never_holds_a_secret_value(name):
    variables = {v["key"]: v for v in _render_service()["envVars"]}
    assert name in variables, f"render.yaml does not declare {name}"
    entry = variables[name]
    assert "value" not in entry, f"render.yaml holds a value for {name}"
    assert entry.get("sync") is False or "fromDatabase" in entry, (
        f"{name} must be `sync: false` (asked for on creation) or `fromDatabase`"
    )


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    text = _FENCE_RE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    links = []
    for target in _LINK_RE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http:, https:, mailto: and in-page anchors
        links.append(target)
    return links


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files(path):
    broken = [
        target
        for target in _relative_links(path)
        if not (path.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{path.relative_to(REPO)} links to missing files: {broken}"


def test_the_link_checker_sees_links():
    """Guard against a regex that silently matches nothing."""
    links = _relative_links(REPO / "docs" / "TWILIO_SETUP.md")
    assert "CONFIGURATION.md" in links and "../README.md" in links
