"""scripts/run_local.bat: Windows line endings, the Makefile's steps, and its Python parts run.

There is no Windows here, so the batch file itself never runs. The test checks that it
issues the same commands as `make run`, then runs those commands (ingest the sample, start
app.py, ask /health) the way the script does: from a directory holding a copy of
.env.example as .env.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from bot.settings import ENV_KEYS
from tests.services import free_port
from tests.support import REPO, serving

BAT = REPO / "scripts" / "run_local.bat"
START_SECONDS = 10.0


def _make_recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def _bat_commands() -> list[str]:
    """The batch file's lines, with Windows path separators turned into slashes."""
    return [line.replace("\\", "/") for line in BAT.read_bytes().decode("utf-8").splitlines()]


def test_run_local_bat_has_crlf_line_endings():
    data = BAT.read_bytes()
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n"), "a line ends in LF without CR"
    assert b"\r" not in data.replace(b"\r\n", b""), "a stray CR"


def test_run_local_bat_runs_the_same_steps_as_make_run():
    install = " ".join(_make_recipe("$(VENV)/.runtime"))
    run = _make_recipe("run")
    assert "pip install" in install and "-r requirements.txt" in install
    assert any("flask --app app ingest knowledge/sample" in line for line in run)
    assert any(line.endswith(" app.py") for line in run)

    bat = _bat_commands()
    assert any(
        "pip install" in line and "-r requirements.txt" in line and "goto :failed" in line
        for line in bat
    ), "the .bat should install requirements.txt and stop on failure"
    assert any(
        "-m flask --app app ingest knowledge/sample" in line and "goto :failed" in line
        for line in bat
    )
    assert any(re.search(r"python\.exe\"? app\.py$", line) for line in bat)
    # The order matters: install, then ingest, then serve.
    text = "\n".join(bat)
    assert text.index("-r requirements.txt") < text.index("ingest knowledge/sample")
    assert text.index("ingest knowledge/sample") < text.rindex("app.py")


def test_the_python_steps_of_run_local_bat_serve_health(tmp_path):
    # Like the script: a fresh .env copied from .env.example, the repository's config.json,
    # but a throwaway DATA_DIR and a free port (environment values override .env).
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    port = free_port()
    # Nothing from the caller's environment may point the app at real services.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ENV_KEYS and not key.startswith("FLASK_")
    }
    env.update(
        PYTHONPATH=str(REPO),
        CONFIG_PATH=str(REPO / "config.json"),
        DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),
        WEB_CONCURRENCY="1",
    )
    ingest = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "app",
            "ingest",
            str(REPO / "knowledge" / "sample"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert re.search(r"Ingested [1-9]\d* new", ingest.stdout), ingest.stdout

    command, base = [sys.executable, str(REPO / "app.py")], f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with serving(command, base, log, seconds=START_SECONDS, cwd=tmp_path, env=env) as (_, report):
        assert report["status"] == "ok", report
        assert report["components"]["knowledge"]["ok"] is True


def test_env_example_as_env_without_config_json_serves_on_the_port_in_env(tmp_path):
    # `cp .env.example .env`, no config.json, a PORT chosen in .env, and an empty PORT in
    # the shell (empty counts as unset: it must not hide the .env value).
    port = free_port()
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^PORT=8000$", example, re.MULTILINE) and "\nCONFIG_PATH=\n" in example
    env_file = example.replace("PORT=8000", f"PORT={port}").replace("DATA_DIR=data", "")
    (tmp_path / ".env").write_text(env_file, encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ENV_KEYS and key != "CONFIG_PATH" and not key.startswith("FLASK_")
    }
    env.update(PYTHONPATH=str(REPO), PORT="", DATA_DIR=str(tmp_path / "data"))
    # What run_local.sh/.bat print, and what `make run` then serves on.
    told = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "serving_port.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (told.returncode, told.stdout.strip()) == (0, str(port)), told.stderr
    command, base = [sys.executable, str(REPO / "app.py")], f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with serving(command, base, log, seconds=START_SECONDS, cwd=tmp_path, env=env) as (_, report):
        assert report["status"] == "ok", report


def test_a_bad_value_in_env_file_is_reported_as_coming_from_it(tmp_path):
    (tmp_path / ".env").write_text("PORT=eighty\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and k != "CONFIG_PATH"}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "serving_port.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Configuration error: .env: PORT = "eighty": expected a whole number from 1 to 65535'
    )
