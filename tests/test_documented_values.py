"""Every value the docs call a default or allowed loads through the real loader.

A maintainer copies a value from the docs and expects it to work. The values are mined, not
listed by hand, from:

- the tables of docs/CONFIGURATION.md and the README: the backticked tokens of the
  "default" / "built-in default" and "allowed values" cells (JSON for a config key, the raw
  string for an environment variable, where `"x"` is the string x, as in a .env file);
- `NAME=value` assignments of known variables in README.md, docs/*.md, .env.example,
  scripts/ and the Makefile (`NAME ?= value` there), and render.yaml's envVars values;
- `"key": value` pairs of config keys in the docs' code (and `section.key: value` in inline
  code), and config.json itself.

Each config value is loaded from a temporary config.json, each variable from the environment
mapping and from a real .env file, with `load_settings(..., dotenv_path=...)`. Backticked prose
and placeholders are in the two small tables below; an entry nobody uses fails too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import CONFIG_KEYS, ENV_KEYS, ConfigError, Settings, load_settings
from tests.support import REPO

ENV_NAMES = sorted({*ENV_KEYS, "CONFIG_PATH"})  # CONFIG_PATH is read before the others
SECTIONS = {key.split(".")[0] for key in CONFIG_KEYS}
LEAVES = {key.split(".")[1]: key for key in CONFIG_KEYS}  # leaf names are unique across sections
FIELDS = {**{k: f for k, (f, _) in CONFIG_KEYS.items()}, **{k: f for k, (f, _) in ENV_KEYS.items()}}
FIELDS["CONFIG_PATH"] = "config_path"

# Backticked tokens in default / allowed-values cells that are prose, not values.
NOT_A_VALUE = {
    "check": "the `flask --app app check` command, which checks a value's shape",
    "AC": "the prefix `check` expects of an Account SID",
    "whatsapp:": "the optional prefix of a number, not a number",
    "+": "the first character of an E.164 number",
    "/": "the trailing slash that is removed from a URL",
    ";": "the separator between rate limits",
    "_": "a character allowed in label, property and index names",
    "text": "a column a custom retrieval query returns",
    "source": "a column a custom retrieval query returns",
    "score": "a column a custom retrieval query returns",
    "$(.venv/bin/python": "run_local.sh asks scripts/serving_port.py for the port",
}

# The Bolt schemes the neo4j tables name: as `bolt://` (config table) and as `bolt` (env table).
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")

# Placeholders, each loaded as the concrete value it stands for. A documented value that
# contains "..." must be listed here.
PLACEHOLDERS: dict[str, str] = {
    "https://": "https://bot.example.com",
    "http://": "http://127.0.0.1:8000",
    **{f"{scheme}://": f"{scheme}://localhost:7687" for scheme in BOLT_SCHEMES},
    **{scheme: f"{scheme}://localhost:7687" for scheme in BOLT_SCHEMES},
    "N per second/minute/hour/day": "5 per second; 60 per minute; 600 per hour; 6000 per day",
    "N/minute": "6/minute",
    "redis://host:port[/db]": "redis://localhost:6379/0",
    "rediss://...": "rediss://redis.example.com:6380",
    "redis://...": "redis://localhost:6379",
    "postgres://...": "postgres://bot:pw@localhost:5432/bot",
    "postgresql://...": "postgresql://bot:pw@localhost:5432/bot",
    "AC...": "AC" + "0123456789abcdef" * 2,  # an Account SID
    "...": "a-secret-value",  # a token, key or password
    "+YOUR-NUMBER,": "+447700900123,",  # the run_local scripts' hint
    "/var/data/config.json": str(REPO / "config.json"),  # a file on Render's disk
}

CONFIGURATION = "docs/CONFIGURATION.md"
TABLE_DOCS = (CONFIGURATION, "README.md")
_CODE_RE = re.compile(r"`([^`\n]+)`")
_FENCE_RE = re.compile(r"^(```|~~~)([^\n]*)\n(.*?)^\1", re.MULTILINE | re.DOTALL)
_NAMES = "|".join(sorted(ENV_NAMES, key=len, reverse=True))
_ASSIGN_RE = re.compile(rf"(?<![\w$%{{.-])({_NAMES})=(\"[^\"\n]*\"|'[^'\n]*'|[^\s`\"']*)")
_MAKE_ASSIGN_RE = re.compile(rf"^({_NAMES})\s*[?:+]?=[ \t]*(\S*)", re.MULTILINE)
_PAIR_RE = re.compile(r'"(\w+)"\s*:\s*')


@dataclass(frozen=True)
class Documented:
    """One value as the docs show it: JSON for a config key, a raw string for a variable."""

    name: str
    raw: str
    source: str
    role: str = "value"  # "default", "shipped", "refused" or "value"

    @property
    def is_config(self) -> bool:
        return self.name in CONFIG_KEYS


def _read(relative: str) -> str:
    return (REPO / relative).read_text(encoding="utf-8")


def _split_row(line: str) -> list[str]:
    """The cells of a Markdown table row; a `|` inside backticks does not split."""
    cells, current, in_code = [], [], False
    for char in line.strip():
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    return cells[1:]


def _table_rows(text: str) -> Iterator[dict[str, str]]:
    """Each row of each Markdown table, as {lower-case header without backticks: cell}."""
    header: list[str] | None = None
    for line in _FENCE_RE.sub("", text).splitlines():
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = [cell.replace("`", "").lower() for cell in _split_row(line)]
        elif not set(line) <= set("|-: "):
            yield dict(zip(header, _split_row(line), strict=False))


def _from_tables(relative: str) -> Iterator[Documented]:
    for row in _table_rows(_read(relative)):
        first = next(iter(row.values()))
        names = [t for t in _CODE_RE.findall(first) if t in CONFIG_KEYS or t in ENV_NAMES]
        for name in names:
            # A list key's cell may show one entry, "+447700900123": loaded as ["+447700900123"].
            listed = name in CONFIG_KEYS and row.get("type", "").startswith("list")
            for column in ("built-in default", "default", "allowed values"):
                cell = row.get(column, "")
                for index, match in enumerate(_CODE_RE.finditer(cell)):
                    role = "value"
                    if column != "allowed values" and index == 0:
                        # The README shows what the shipped config.json gives; this page the
                        # built-in default, and "(shipped: `x`)" where config.json differs.
                        shipped = relative == "README.md" and name in CONFIG_KEYS
                        role = "shipped" if shipped else "default"
                    elif re.search(r"shipped:\s*$", cell[: match.start()]):
                        role = "shipped"
                    elif re.match(r"\s+is not allowed", cell[match.end() :]):
                        role = "refused"
                    raw = match.group(1)
                    if listed and isinstance(_json_or_none(raw), str):
                        raw = f"[{raw}]"
                    yield Documented(name, raw, f"{relative} table", role)


def _json_or_none(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


def _assignment_files() -> list[str]:
    files = ["README.md", *(f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md")))]
    files += [".env.example", "Makefile"]
    return files + [f"scripts/{p.name}" for p in sorted((REPO / "scripts").iterdir())]


def _from_assignments() -> Iterator[Documented]:
    for relative in _assignment_files():
        text = _read(relative)
        matches = [*_ASSIGN_RE.finditer(text)]
        if relative == "Makefile":
            matches += _MAKE_ASSIGN_RE.finditer(text)
        for match in matches:
            line = text.count("\n", 0, match.start()) + 1
            yield Documented(match.group(1), match.group(2), f"{relative}:{line}")
    blueprint = yaml.safe_load(_read("render.yaml"))
    for service in blueprint["services"]:
        for variable in service.get("envVars", []):
            if variable["key"] in ENV_NAMES and "value" in variable:
                yield Documented(variable["key"], str(variable["value"]), "render.yaml envVars")


def _snippets(text: str) -> Iterator[str]:
    """Fenced code blocks, then inline code outside them."""
    for match in _FENCE_RE.finditer(text):
        yield match.group(3)
    yield from _CODE_RE.findall(_FENCE_RE.sub("", text))


def _from_json(snippet: str, source: str) -> Iterator[Documented]:
    """`"key": value` pairs of config keys; a bare leaf counts when its section is named
    earlier in the snippet, or when its name has an underscore (too specific to be another
    JSON's key)."""
    sections: set[str] = set()
    for match in _PAIR_RE.finditer(snippet):
        leaf = match.group(1)
        if leaf in SECTIONS:
            sections.add(leaf)
        key = LEAVES.get(leaf)
        if key is None or not (key.split(".")[0] in sections or "_" in leaf):
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(snippet, match.end())
        except json.JSONDecodeError:  # e.g. [...]: kept as written, to be listed or fixed
            raw = re.match(r"[^,\n}]*", snippet[match.end() :]).group().strip()
        else:
            raw = json.dumps(value, ensure_ascii=False)
        yield Documented(key, raw, source)
    inline = re.fullmatch(r"(\w+\.\w+)\s*:\s*(.+)", snippet.strip())
    if inline and inline.group(1) in CONFIG_KEYS:
        yield Documented(inline.group(1), inline.group(2).strip(), source)


def _from_code() -> Iterator[Documented]:
    for relative in [f for f in _assignment_files() if f.endswith(".md")]:
        for snippet in _snippets(_read(relative)):
            yield from _from_json(snippet, f"{relative} code")
    shipped = json.loads(_read("config.json"))
    for section, values in shipped.items():
        for leaf, value in values.items():
            raw = json.dumps(value, ensure_ascii=False)
            yield Documented(f"{section}.{leaf}", raw, "config.json")


def _documented() -> list[Documented]:
    found = [d for relative in TABLE_DOCS for d in _from_tables(relative)]
    return found + [*_from_assignments(), *_from_code()]


DOCUMENTED = _documented()


def _cases(role_filter: Callable[[str], bool], *, config: bool) -> list[Any]:
    """One pytest param per (name, value), with every source that shows it."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for d in DOCUMENTED:
        if d.is_config == config and role_filter(d.role) and d.raw not in NOT_A_VALUE:
            grouped.setdefault((d.name, d.raw), []).append(d.source)
    return [
        pytest.param(name, raw, sorted(set(sources)), id=f"{name}={raw}")
        for (name, raw), sources in sorted(grouped.items())
    ]


def _listed_hint(raw: str) -> str:
    return (
        f"if {raw!r} is prose, list it in NOT_A_VALUE; if it is a placeholder, map it to a "
        "concrete value in PLACEHOLDERS; otherwise fix the doc or bot/settings.py"
    )


def _config_value(raw: str) -> Any:
    if raw in PLACEHOLDERS:
        return PLACEHOLDERS[raw]
    assert "..." not in raw, f"{raw!r} is a placeholder: {_listed_hint(raw)}"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pytest.fail(f"{raw!r} is not JSON, as a config.json value must be: {_listed_hint(raw)}")


def _env_text(raw: str) -> str:
    """The line's value as a .env file holds it."""
    assert raw in PLACEHOLDERS or "..." not in raw, f"{raw!r} is a placeholder: {_listed_hint(raw)}"
    return PLACEHOLDERS.get(raw, raw)


def _env_value(raw: str) -> str:
    """The value the variable holds: `"x"` is the string x, as in a .env file."""
    text = _env_text(raw)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    return text


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A current directory whose config.json is empty, so CONFIG_PATH=config.json loads."""
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _load_config(tmp_path: Path, key: str, value: Any) -> Settings:
    section, leaf = key.split(".")
    path = tmp_path / "documented.json"
    path.write_text(json.dumps({section: {leaf: value}}), encoding="utf-8")
    settings = load_settings({"CONFIG_PATH": str(path)}, dotenv_path=None)
    assert not [w for w in settings.warnings if "unknown" in w], settings.warnings
    return settings


def _load_env(name: str, raw: str) -> Settings:
    return load_settings({name: _env_value(raw)}, dotenv_path=None)


def _load_dotenv(workdir: Path, lines: str) -> Settings:
    dotenv = workdir / ".env"
    dotenv.write_text(lines, encoding="utf-8")
    return load_settings({}, dotenv_path=dotenv)


def _built_in(name: str) -> Any:
    """The field as the loader gives it when nothing sets it."""
    return getattr(load_settings({}, dotenv_path=None), FIELDS[name])


@pytest.mark.parametrize(("key", "raw", "sources"), _cases(lambda r: r != "refused", config=True))
def test_documented_config_value_loads(tmp_path, key, raw, sources):
    value = _config_value(raw)
    try:
        _load_config(tmp_path, key, value)
    except ConfigError as exc:
        pytest.fail(f"{key} = {raw} from {sources} does not load: {exc}; {_listed_hint(raw)}")


@pytest.mark.parametrize(("name", "raw", "sources"), _cases(lambda r: r != "refused", config=False))
def test_documented_environment_value_loads_from_environ_and_dotenv(workdir, name, raw, sources):
    try:
        from_environ = _load_env(name, raw)
        from_dotenv = _load_dotenv(workdir, f"{name}={_env_text(raw)}\n")
    except ConfigError as exc:
        pytest.fail(f"{name}={raw} from {sources} does not load: {exc}; {_listed_hint(raw)}")
    field = FIELDS[name]
    assert getattr(from_environ, field) == getattr(from_dotenv, field)


@pytest.mark.parametrize(
    ("name", "raw", "sources"),
    _cases(lambda r: r == "default", config=True) + _cases(lambda r: r == "default", config=False),
)
def test_documented_default_is_the_built_in_default(workdir, name, raw, sources):
    if name in CONFIG_KEYS:
        loaded = _load_config(workdir, name, _config_value(raw))
    else:
        loaded = _load_env(name, raw)
    assert getattr(loaded, FIELDS[name]) == _built_in(name), (
        f"{sources} say the default of {name} is {raw}; the loader's is {_built_in(name)!r}"
    )


def _shipped_cases() -> list[Any]:
    """CONFIGURATION.md: config.json holds the default unless the cell says "shipped:"."""
    keys_with_shipped = {d.name for d in DOCUMENTED if d.role == "shipped"}
    return _cases(lambda r: r == "shipped", config=True) + [
        param
        for param in _cases(lambda r: r == "default", config=True)
        if param.values[0] not in keys_with_shipped
    ]


@pytest.mark.parametrize(("key", "raw", "sources"), _shipped_cases())
def test_shipped_config_json_holds_the_documented_value(tmp_path, key, raw, sources):
    shipped = load_settings({"CONFIG_PATH": str(REPO / "config.json")}, dotenv_path=None)
    documented = _load_config(tmp_path, key, _config_value(raw))
    assert getattr(documented, FIELDS[key]) == getattr(shipped, FIELDS[key]), (
        f"{sources} say config.json ships {key} = {raw}"
    )


@pytest.mark.parametrize(("key", "raw", "sources"), _cases(lambda r: r == "refused", config=True))
def test_value_the_docs_call_not_allowed_is_refused(tmp_path, key, raw, sources):
    with pytest.raises(ConfigError):
        _load_config(tmp_path, key, _config_value(raw))


def test_env_example_copied_to_dotenv_loads(workdir):
    """scripts/run_local.* copy .env.example to .env when there is none."""
    text = _read(".env.example")
    settings = _load_dotenv(workdir, text)
    assert settings.config_path == "config.json"
    assert settings.port == 8000


def test_dotenv_blocks_in_the_docs_load_as_written(workdir):
    """A fenced ini/dotenv block is meant to be pasted into .env: placeholders replaced."""
    blocks = [
        (relative, match.group(3))
        for relative in _assignment_files()
        if relative.endswith(".md")
        for match in _FENCE_RE.finditer(_read(relative))
        if match.group(2).strip() in ("ini", "dotenv", "env")
    ]
    assert blocks, "no ini block found (docs/TWILIO_SETUP.md shows one)"
    for relative, block in blocks:
        pasted = _ASSIGN_RE.sub(lambda m: f"{m.group(1)}={_env_text(m.group(2))}", block)
        settings = _load_dotenv(workdir, pasted)
        for match in _ASSIGN_RE.finditer(block):
            name, raw = match.groups()
            expected = _load_env(name, raw)
            assert getattr(settings, FIELDS[name]) == getattr(expected, FIELDS[name]), relative


def test_the_miners_found_values_from_every_source():
    """Guard against a regex or table layout that silently matches nothing."""
    defaults = {d.name for d in DOCUMENTED if d.role == "default" and d.source.startswith("docs/")}
    assert defaults >= set(CONFIG_KEYS) | set(ENV_NAMES), (
        f"no documented default found for {sorted(set(CONFIG_KEYS) | set(ENV_NAMES) - defaults)}"
    )
    sources = {d.source.split(":")[0].split(" ")[0] for d in DOCUMENTED}
    for expected in (
        "README.md",
        CONFIGURATION,
        "docs/TWILIO_SETUP.md",
        ".env.example",
        "render.yaml",
        "scripts/run_local.sh",
        "scripts/run_local.bat",
        "config.json",
    ):
        assert expected in sources, f"no value found in {expected}"
    pairs = {(d.name, d.raw) for d in DOCUMENTED}
    for pair in [
        ("RATELIMIT_STORAGE_URI", "memory://"),  # the documented default that once failed
        ("twilio.bot_trigger_words", '["@agent", "hey agent"]'),  # a phrase
        ("whatsapp.allowed_senders", '["+447700900123"]'),  # TWILIO_SETUP.md's JSON snippet
        ("twilio.validate_signature", "false"),
        ("PORT", "8000"),
    ]:
        assert pair in pairs, f"{pair} not found"
    assert {d.source for d in DOCUMENTED if d.role == "shipped"} >= {
        "README.md table",
        f"{CONFIGURATION} table",
    }
    assert any(d.role == "refused" for d in DOCUMENTED)


def test_every_prose_and_placeholder_entry_is_still_in_the_docs():
    """The tables stay honest: an entry no doc uses any more goes."""
    raws = {d.raw for d in DOCUMENTED}
    unused = [token for token in (*NOT_A_VALUE, *PLACEHOLDERS) if token not in raws]
    assert not unused, f"NOT_A_VALUE / PLACEHOLDERS entries no doc uses: {unused}"
