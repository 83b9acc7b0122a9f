"""Production shape: real gunicorn with gunicorn.conf.py, stage log lines, log rotation."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlencode

from bot.logs import configure_logging, log_path
from tests.services import free_port
from tests.support import (
    ALICE,
    PUBLIC_URL,
    REPO,
    SAMPLE,
    WEBHOOK,
    sign,
    twilio_form,
    wait_for_health,
)

GUNICORN_TOKEN = "0123456789abcdef" * 2


def test_one_message_logs_each_stage_with_one_request_id(make_app, signed_post, mistral):
    app = make_app(mistral_api_key="k", mistral_server_url=mistral.url)
    signed_post(app.test_client(), twilio_form("@agent who attended the UNEA meeting?"))
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = log_path(app.extensions["bot"].settings).read_text().splitlines()
    stages = {
        "received": r"received SM\w+ from \+44\*+0001 \(\d+ chars, 0 media\)",
        "retrieved": r"retrieved \d+ passages in \d+ ms",
        "answered": r"answered by mistral in \d+ ms \(\d+ tokens\)",
        "replied": r"replied \(answer\) in \d+ ms",
    }
    ids = set()
    for stage, pattern in stages.items():
        matching = [line for line in lines if re.search(pattern, line)]
        assert len(matching) == 1, (stage, lines)
        ids.add(re.search(r"\[(\w+)\]", matching[0]).group(1))
    assert len(ids) == 1 and ids != {"-"}


def test_the_log_file_rotates(settings_for):
    settings = settings_for(log_file="")
    configure_logging(settings, max_bytes=2_000)
    log = logging.getLogger("rotation-test")
    for n in range(100):
        log.warning("line %d of a log that grows past its size limit", n)
    for handler in logging.getLogger().handlers:
        handler.flush()  # lines are written by a background thread
    path = log_path(settings)
    assert path.exists() and path.with_name(path.name + ".1").exists()
    assert path.stat().st_size <= 2_000


def post(port: int, form: dict[str, str], timeout: float = 20) -> tuple[int, str]:
    headers = {
        "X-Twilio-Signature": sign(PUBLIC_URL + WEBHOOK, form, GUNICORN_TOKEN),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{WEBHOOK}", data=urlencode(form).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def test_gunicorn_conf_serves_signed_requests_and_drains_on_sigterm(tmp_path, mistral):
    port = free_port()
    config = tmp_path / "config.json"  # the shipped config.json admits nobody once signed
    config.write_text('{"whatsapp": {"allowed_senders": ["*"]}}')
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "CONFIG_PATH": str(config),
        "DATA_DIR": str(tmp_path / "data"),
        "TWILIO_AUTH_TOKEN": GUNICORN_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "MISTRAL_API_KEY": "k",
        "MISTRAL_SERVER_URL": mistral.url,
    }
    flask = [sys.executable, "-m", "flask", "--app", "app", "ingest", str(SAMPLE)]
    subprocess.run(flask, cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}", server, seconds=15)
        assert health["status"] == "ok"
        status, body = post(port, twilio_form("@agent help", ALICE))
        assert status == 200 and "reset" in body

        # A reply in flight when the deploy's SIGTERM arrives still reaches the user.
        mistral.delay, mistral.reply = 2.0, "The attendees were Amara and Jonas."
        result: dict = {}

        def slow_question() -> None:
            result["reply"] = post(port, twilio_form("@agent who attended the UNEA meeting?"))

        asker = threading.Thread(target=slow_question)
        asker.start()
        for _ in range(100):  # wait until the model has the request
            if mistral.chat_requests:
                break
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        asker.join(timeout=20)
        assert result["reply"][0] == 200
        assert "The attendees were Amara and Jonas." in result["reply"][1]
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        output = server.stdout.read()
        server.stdout.close()
    assert "Booting worker" in output
    # memory:// rate limits with 2 workers: said once, by the master, at start.
    assert output.count("WARNING rate limits in memory with 2 workers") == 1
    assert '"POST /whatsapp/webhook" 200' in output  # the access log went to stdout


def run_gunicorn_until_it_exits(tmp_path, **env: str) -> tuple[int, str, float]:
    """Start gunicorn as Render does; (exit status, output, seconds) once it stops."""
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
        cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
        raise AssertionError(f"gunicorn still running after 15 s:\n{output[-3000:]}") from None
    return server.returncode, output, time.monotonic() - started


def test_gunicorn_with_a_bad_config_value_stops_with_the_one_line(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"whatsapp": {"context_limit": 0}}')
    status, output, _ = run_gunicorn_until_it_exits(tmp_path, CONFIG_PATH=str(config))
    line = (
        f"Configuration error: {config}: whatsapp.context_limit = 0: "
        "expected a whole number from 1 to 50"
    )
    assert status != 0
    assert line in output.splitlines(), output
    # Checked in the master before the port is bound: no worker was ever started.
    assert "Booting worker" not in output and "Traceback" not in output, output


def test_a_worker_that_cannot_start_stops_gunicorn_instead_of_respawning(tmp_path):
    # DATA_DIR is a file: only create_app (in each worker) finds out, after the master
    # started. gunicorn must give up after the first failures, not loop.
    data = tmp_path / "not-a-directory"
    data.write_text("")
    status, output, _ = run_gunicorn_until_it_exits(tmp_path, DATA_DIR=str(data))
    assert status != 0
    assert f"Configuration error: environment: DATA_DIR = '{data}'" in output, output
    assert "App failed to load" in output
    assert output.count("Booting worker") <= 2, output
