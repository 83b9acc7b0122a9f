"""`make run`'s threaded development server (`python app.py`) in local mode, for real.

It keeps a bounded number of files open: Flask's development server starts one thread per
request, and stores that opened an SQLite connection per thread grew by two file
descriptors per message until the process reached its limit and history went silently
unavailable. Here it answers 2,000 webhook requests while /proc/<pid>/fd is sampled.

And it serves only requests holding the local token: a relay on this machine that adds no
forwarding header connects from 127.0.0.1 on behalf of anyone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.knowledge import open_knowledge_store
from bot.knowledge.ingest import ingest_paths
from bot.ops.cli import reply_texts
from bot.settings import ENV_KEYS, Settings
from bot.web.security import LOCAL_TOKEN_FILE, LOCAL_TOKEN_HEADER, local_token
from tests.services import free_port
from tests.services.relay import BlackHoleRelay
from tests.support import REPO, SAMPLE, WEBHOOK, serving, twilio_form

REQUESTS = 2000
CLIENTS = 4  # concurrent senders, one client thread each
MAX_OPEN_FILES = 64  # the server starts with about 20; a laptop's limit is 256 or 1,024
SAMPLE_SECONDS = 0.2
START_SECONDS = 20.0
QUESTIONS = ("who attended the UNEA meeting?", "what did we decide about Germany?")

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc/<pid>/fd (Linux)"
)


def open_files(pid: int) -> int:
    """How many file descriptors the process holds now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path, str]]:
    """`python app.py` in local mode on a free port, the sample ingested; (URL, process, log,
    the local token)."""
    data = tmp_path / "data"
    with open_knowledge_store(Settings(data_dir=str(data))) as knowledge:
        ingest_paths(knowledge, [str(SAMPLE)], progress=False)
    # The repository's config.json, with a rate limit 500 messages per sender stay under.
    config = json.loads((REPO / "config.json").read_text(encoding="utf-8"))
    config["whatsapp"]["rate_limit"] = f"{REQUESTS * 10} per minute"
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    # No TWILIO_AUTH_TOKEN (local mode: loopback without signatures) nor anything else from
    # the caller's environment that could point the app at real services.
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("FLASK_")}
    port = free_port()
    env.update(
        PYTHONPATH=str(REPO),
        CONFIG_PATH=str(tmp_path / "config.json"),
        DATA_DIR=str(data),
        PORT=str(port),
        LOG_LEVEL="WARNING",  # the failures, not 2,000 "answered" lines
    )
    log, base = tmp_path / "server.log", f"http://127.0.0.1:{port}"
    # cwd is the temporary dir, not the repository, so a developer's .env (which may hold a
    # TWILIO_AUTH_TOKEN, ending local mode) cannot leak into the test.
    command = [sys.executable, str(REPO / "app.py")]
    with serving(command, base, log, seconds=START_SECONDS, cwd=tmp_path, env=env) as (server, _):
        yield base, server, log, local_token(str(data))


def post(base: str, form: dict[str, str], token: str) -> tuple[int, str, str]:
    """(status, content type, body) of one unsigned webhook POST with this local token."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", LOCAL_TOKEN_HEADER: token}
    request = urllib.request.Request(base + WEBHOOK, urlencode(form).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get_content_type(), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.read().decode(errors="replace")


def converse(base: str, token: str, n: int, count: int) -> list[str]:
    """One sender's `count` messages: question, sources, question, stats, ...; the failures."""
    sender = f"whatsapp:+4477006{n:05d}"
    failures: list[str] = []
    asked = 0
    for i in range(count):
        step = i % 4
        if step in (0, 2):
            body, asked = f"@agent {QUESTIONS[step // 2]}", asked + 1
        else:
            body = "@agent sources" if step == 1 else "@agent stats"
        status, kind, text = post(base, twilio_form(body, sender), token)
        texts = reply_texts(text) if status == 200 and kind == "text/xml" else []
        reply = texts[0] if texts else ""
        # Each expectation needs both stores: a question its passages, `sources` the
        # history's last answer, `stats` the history's exact count of this sender's questions.
        expected = {
            0: "UNEA" in reply,
            1: reply.startswith("My last answer came from:"),
            2: "Germany" in reply,
            3: f"{asked} in total" in reply,
        }[step]
        if not expected:
            failures.append(f"sender {n} message {i} {body!r}: {status} {kind} {text[:300]!r}")
    return failures


def test_two_thousand_webhooks_keep_the_dev_server_under_64_open_files(dev_server):
    base, server, log, token = dev_server
    samples = [open_files(server.pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            samples.append(open_files(server.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    per_sender = REQUESTS // CLIENTS

    def sender(n: int) -> list[str]:
        return converse(base, token, n, per_sender)

    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
            failures = [
                failure
                for batch in clients.map(
                    lambda n: converse(base, token, n, per_sender), range(CLIENTS)
                )
                for failure in batch
            ]
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    samples.append(open_files(server.pid))
    with urllib.request.urlopen(base + "/health", timeout=5) as response:
        health = json.loads(response.read())

    figures = f"open files: max {max(samples)}, last {samples[-1]}, {len(samples)} samples; "
    figures += f"{REQUESTS} requests in {elapsed:.1f} s"
    print(figures)  # shown with -s or on failure
    assert failures[:5] == [], f"{len(failures)} failed; {figures}\n{log.read_text()[-2000:]}"
    counters = health["counters"]
    assert counters["answers"] == REQUESTS // 2 and counters["errors"] == 0, health
    assert health["components"]["history"]["ok"] and health["components"]["knowledge"]["ok"]
    assert max(samples) < MAX_OPEN_FILES, figures


def test_local_mode_refuses_what_a_headerless_relay_forwards(dev_server, tmp_path):
    # ngrok tcp, ssh -R, socat, nginx proxy_pass without X-Forwarded-For: a stranger's
    # request arrives from 127.0.0.1 with no forwarding header. Only the token tells.
    base, server, log, token = dev_server
    port = int(base.rpartition(":")[2])
    relay = BlackHoleRelay("127.0.0.1", port)
    relayed = f"http://{relay.address}"
    try:
        for body in ("@agent sources", "@agent stats", "@agent forget me"):
            status, _, text = post(relayed, twilio_form(body, "whatsapp:+447700900001"), "")
            assert (status, text) == (403, "Invalid or missing Twilio signature\n")
        guessed = post(relayed, twilio_form("@agent stats"), "0" * 64)
        assert guessed[0] == 403
    finally:
        relay.close()
    # The owner's own client, which reads the token from DATA_DIR, is served.
    status, _, text = post(base, twilio_form("@agent who attended the UNEA meeting?"), token)
    assert status == 200 and "Amara Okafor" in text
    # The token is the owner's alone.
    assert (tmp_path / "data" / LOCAL_TOKEN_FILE).stat().st_mode & 0o777 == 0o600
