"""Real gunicorn (-w 3 --preload, gthread) on PostgreSQL: one pool per worker, no errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
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
from bot.settings import Settings
from tests.services import free_port
from tests.services.postgres import run_sql
from tests.support import (
    PUBLIC_URL,
    REPO,
    SAMPLE,
    TOKEN,
    WEBHOOK,
    serving,
    sign,
    twilio_form,
)

WORKERS = 3
SENDERS = 25
QUESTIONS = 8  # 200 requests in all


def gunicorn_binary() -> str:
    here = Path(sys.executable).parent / "gunicorn"
    found = str(here) if here.exists() else shutil.which("gunicorn")
    if not found:
        pytest.fail("gunicorn is a runtime dependency but is not installed")
    return found


@pytest.fixture
def server(tmp_path, pg_url) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """gunicorn serving app:app on a free port; yields (base URL, process, log file)."""
    data = tmp_path / "data"
    with open_knowledge_store(Settings(data_dir=str(data))) as knowledge:
        ingest_paths(knowledge, [str(SAMPLE)], progress=False)
    config = json.loads((REPO / "config.json").read_text())
    # Everyone allowed, and a rate limit this test's 8 messages per sender stay under.
    config["whatsapp"].update(allowed_senders=["*"], rate_limit="1000 per minute")
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": pg_url,
        "DATA_DIR": str(data),
        "CONFIG_PATH": str(tmp_path / "config.json"),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "LOG_LEVEL": "INFO",
    }
    port = free_port()
    command = [gunicorn_binary(), "-w", str(WORKERS), "--preload", "-k", "gthread"]
    command += ["--threads", "4", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "app:app"]
    log_path, base = tmp_path / "gunicorn.log", f"http://127.0.0.1:{port}"
    # cwd is the temporary dir, so no developer's .env leaks into the test.
    with serving(command, base, log_path, seconds=30, cwd=tmp_path, env=env) as (process, _):
        yield base, process, log_path


def post(base: str, form: dict[str, str]) -> tuple[int, str]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + WEBHOOK, form),
    }
    request = urllib.request.Request(base + WEBHOOK, urlencode(form).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_each_worker_opens_its_own_pool_and_200_requests_succeed(server, pg_url):
    base, process, log_path = server

    def converse(n: int) -> list[tuple[int, str]]:
        sender = f"whatsapp:+4477008{n:05d}"
        return [
            post(base, twilio_form(f"@agent who attended the UNEA meeting? ({q})", sender))
            for q in range(QUESTIONS)
        ]

    with ThreadPoolExecutor(max_workers=SENDERS) as executor:
        results = [r for batch in executor.map(converse, range(SENDERS)) for r in batch]
    # Connections the workers hold now, before shutdown closes them.
    names = run_sql(
        pg_url,
        "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
        ("whatsapp-bot:%:pool",),
    )

    assert len(results) == 200
    assert [status for status, _ in results] == [200] * 200
    assert all("Amara Okafor" in reply_texts(body)[0] for _, body in results)

    log = log_path.read_text()
    workers = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", log)}
    pools = [int(p) for p in re.findall(r"PostgreSQL pool opened in process (\d+)", log)]
    assert len(workers) == WORKERS
    assert process.pid not in pools  # the preloading master never opened one...
    assert set(pools) <= workers  # ...each pool was opened in a worker, after the fork
    assert len(pools) == len(set(pools)) >= 2  # one pool per worker that served
    # The schema was migrated once, at start-up in the master, before the fork.
    assert re.findall(r"schema migrated to version \d+ in process (\d+)", log) == [str(process.pid)]
    connected = {int(name.split(":")[1]) for (name,) in names}
    assert connected and connected <= set(pools)
    for problem in ("ERROR", "Traceback", "history unavailable", "PoolError"):
        assert problem not in log

    # Every exchange stored once, pruned to the last 10 messages per conversation.
    assert run_sql(pg_url, "SELECT count(*) FROM messages") == [(SENDERS * 10,)]
    assert run_sql(pg_url, "SELECT count(*) FROM deliveries WHERE state = 'done'") == [(200,)]
    assert run_sql(pg_url, "SELECT sum(questions) FROM usage") == [(200,)]
