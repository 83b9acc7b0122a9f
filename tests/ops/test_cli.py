"""The Flask CLI: chat, ingest, search, forget; and the README's quickstart for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.errors import KnowledgeUnavailable
from tests.services import free_port
from tests.support import REPO, SAMPLE, serving


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_chat_prints_the_answer_with_its_source(runner):
    # The app has an auth token: this only answers because the CLI signs like Twilio.
    result = runner.invoke(args=["chat", "@agent who attended the UNEA meeting?"])
    assert result.exit_code == 0, result.output
    assert "Amara Okafor" in result.output
    assert "Sources:" in result.output


def test_chat_without_mention_prints_the_hint(runner):
    result = runner.invoke(args=["chat", "hello there"])
    assert "Mention me with @agent" in result.output


def test_search_json_batch_reads_stdin(runner):
    questions = "who attended the UNEA meeting?\nwhat did we decide about Germany?\n"
    result = runner.invoke(args=["search", "--k", "3"], input=questions)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["question"] for line in lines] == questions.splitlines()
    for line in lines:
        assert 1 <= len(line["passages"]) <= 3
        scores = [p["score"] for p in line["passages"]]
        assert scores == sorted(scores, reverse=True)
        assert set(line["passages"][0]) == {"text", "source", "score"}
    assert "UNEA" in lines[0]["passages"][0]["source"]
    assert "Germany" in lines[1]["passages"][0]["text"]


def test_search_single_question_json(runner):
    result = runner.invoke(args=["search", '"unbalanced AND (', "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["question"] == '"unbalanced AND ('


def test_ingest_skips_unchanged_files(make_app):
    runner = make_app(ingest=False).test_cli_runner()
    first = runner.invoke(args=["ingest", str(SAMPLE)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["ingest", str(SAMPLE)])
    assert again.exit_code == 0
    assert "skipped" in again.output.lower()


def test_forget_deletes_a_senders_history(app, runner):
    runner.invoke(args=["chat", "--sender", "whatsapp:+447700900777", "@agent UNEA attendees?"])
    result = runner.invoke(args=["forget", "+44 7700 900777"])
    assert result.exit_code == 0
    # Two turns and the answer cached for the question (the delivery keeps its id only).
    assert "Deleted 3 stored rows" in result.output


def test_quickstart_serves_and_chat_answers_over_http(tmp_path):
    """What the README tells a newcomer: serve on the defaults, then `flask chat`."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "CONFIG_PATH": str(REPO / "config.json"),
    }
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    run = dict(cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    ingest = subprocess.run([*flask, "ingest", str(SAMPLE)], **run)
    assert ingest.returncode == 0, ingest.stderr
    # Batch search writes only JSON lines to stdout (logs go to stderr).
    search = subprocess.run([*flask, "search"], input="UNEA attendees\nGermany\n", **run)
    assert [json.loads(line)["question"] for line in search.stdout.splitlines()] == [
        "UNEA attendees",
        "Germany",
    ]
    command, base, log = [sys.executable, "app.py"], f"http://127.0.0.1:{port}", tmp_path / "log"
    with serving(command, base, log, seconds=20, cwd=REPO, env=env) as (_, health):
        assert health["status"] == "ok"
        chat = subprocess.run(
            [*flask, "chat", "--url", base, "@agent who attended the UNEA meeting?"], **run
        )
        assert chat.returncode == 0, chat.stderr
        assert "Amara Okafor" in chat.stdout
        assert "Sources:" in chat.stdout


def test_ingest_says_in_one_line_when_the_store_fails(make_app, monkeypatch):
    app = make_app(ingest=False)

    def locked(docs):
        raise KnowledgeUnavailable("sqlite: database is locked")

    monkeypatch.setattr(app.extensions["bot"].knowledge, "upsert_many", locked)
    result = app.test_cli_runner().invoke(args=["ingest", str(SAMPLE)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    assert "ingest stopped (the files stored so far are kept; run it again to finish): " in (
        result.output
    )
