"""Plain helpers and constants the tests share (fixtures live in conftest.py, fakes of our
own protocols in tests/fakes/): paths, senders, Twilio's signing and forms, reading
replies and databases, threads, servers in subprocesses, and two scripted drivers."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from bot.chat.conversation import ConversationHandler
from bot.deadline import Deadline
from bot.metrics import Metrics
from bot.models import InboundMessage
from bot.settings import Settings
from tests.fakes.answerers import FakeAnswerer
from tests.fakes.clock import Clock
from tests.fakes.knowledge import FakeKnowledge
from tests.fakes.twilio_media import ACCOUNT_SID, basic_auth

# Paths.
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "knowledge" / "sample"
FIXTURES = REPO / "tests" / "knowledge" / "fixtures"
# Outside the repository: present in the shared workspace, absent in a user's fresh clone.
QMSUM_DIR = REPO.parent / "shared" / "datasets" / "qmsum-val"

# The app as the tests configure it, and who writes to it.
TOKEN = "test-auth-token-0123456789abcdef"
# The apps' account fetches media with its SID and this token (the stand-in checks them).
APP_MEDIA_AUTH = basic_auth(ACCOUNT_SID, TOKEN)
PUBLIC_URL = "https://bot.example.com"
WEBHOOK = "/whatsapp/webhook"
API_KEY = "sk-test-0123456789abcdef"  # what the Mistral stand-in is called with
ALICE = "whatsapp:+447700900001"
BOB = "whatsapp:+447700900002"
CAROL = "whatsapp:+447700900003"
DAVE = "whatsapp:+447700900004"
QUESTION = "@agent Who attended the UNEA meeting?"  # the sample notes answer it

# Questions full of the graph stores' query syntax (Lucene, RediSearch, Cypher).
HOSTILE_GRAPH_QUESTIONS = [
    'what about "Germany',
    "(budget AND timeline) OR NOT germany",
    "budget* ~timeline^2 title:unea",
    "C:\\path\\to\\file /regex/ a-b a+b a&&b a||b !x",
    "@agent {a} [b TO c] | pipe ~1 %fuzzy% $param",
    "AND OR NOT TO",
    "🙂🙂🙂",
    "مرحبا بالاجتماع؟ שלום",
    "\\",
    '"',
    "'); MATCH (n) DETACH DELETE n; //",
    "",
    "   ",
    "会议" * 600,
    "x" * 5000,
]

_sids = itertools.count(1)


def new_sid() -> str:
    """A fresh, Twilio-shaped MessageSid."""
    return f"SM{next(_sids):032x}"


def twilio_form(body: str, sender: str = ALICE, **extra: str) -> dict[str, str]:
    """An inbound WhatsApp webhook form as Twilio sends it."""
    sid = extra.pop("MessageSid", None) or new_sid()
    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Tester",
        "WaId": sender.rpartition("+")[2],
    }
    form.update(extra)
    return form


def sign(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it."""
    return RequestValidator(token).compute_signature(url, form)


def reply_texts_of(response) -> list[str]:
    """The <Message> texts of a webhook response, asserting a 200 with TwiML."""
    from bot.ops.cli import reply_texts

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    return reply_texts(response.get_data(as_text=True))


def stored_rows(app, sql: str = "SELECT COUNT(*) FROM messages") -> int:
    """Count rows straight from an app's SQLite history database."""
    with sqlite3.connect(app.extensions["bot"].history.path) as db:
        return db.execute(sql).fetchone()[0]


# History stores (the `store` and `backend` fixtures are in tests/history/stores.py).
BACKENDS = ["sqlite", "postgres"]


def budget() -> Deadline:
    return Deadline(5)


def db_rows(store, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows straight from a store's database, past its methods (`?` placeholders)."""
    if store.backend == "sqlite":
        with sqlite3.connect(store.path) as db:
            return db.execute(sql, params).fetchall()
    from tests.services.postgres import run_sql

    return run_sql(store._db.url, sql.replace("?", "%s"), params)


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative name: content) below `root`; returns `root`."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def run_threads(target: Callable[..., object], times: int = 0, *, each: Iterable = ()) -> None:
    """Call target() `times` times and target(item) for each item of `each`, every call in
    a thread of its own, all started before any is joined; returns when all have ended."""
    calls = [(target, ())] * times + [(target, (item,)) for item in each]
    threads = [threading.Thread(target=call, args=args) for call, args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_for_health(
    base: str, process: subprocess.Popen, seconds: float, log: Path | None = None
) -> dict:
    """GET base/health until it answers 200 and return its report; fail the test (with the
    log's tail) if the process exits first or `seconds` pass."""
    tail = f":\n{log.read_text(errors='replace')[-3000:]}" if log else ""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args[-1]} exited with {process.returncode}{tail}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as response:
                return json.loads(response.read())
        except OSError:  # refused while it starts (an HTTP error status is one too)
            if time.monotonic() > deadline:
                pytest.fail(f"{base}/health did not answer within {seconds:g} s{tail}")
            time.sleep(0.1)


def stop(process: subprocess.Popen, seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `seconds`."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(
    command: list[str], base: str, log: Path, *, seconds: float, **popen
) -> Iterator[tuple[subprocess.Popen, dict]]:
    """Run a server `command` (output to `log`) until the block ends; yields the process and
    its first /health report, once `base` answers it."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
    try:
        yield process, wait_for_health(base, process, seconds, log)
    finally:
        stop(process)


class TeamBot:
    """A ConversationHandler on a real history store, with fakes of our own protocols and
    a timer the answers move: scripted traffic whose numbers are known exactly."""

    def __init__(self, store, **settings) -> None:
        self.timer = Clock(100.0)  # perf_counter: answers take exactly as long as planned
        self.knowledge = FakeKnowledge()
        self.answerer = FakeAnswerer(lambda q, n: f"answer {n}: {q}", clock=self.timer)
        self.answerer.plan = ("mistral", "", 1000.0)
        self.handler = ConversationHandler(
            Settings(**settings),
            store,
            self.knowledge,
            self.answerer,
            Metrics(),
            timer=self.timer,
        )
        self._sids = 0

    def say(self, sender: str, body: str, plan=None, sid: str | None = None, **extra) -> str:
        """Send one message and return the reply text; `plan` (backend, fallback reason,
        milliseconds) says how this and later questions are answered."""
        if plan is not None:
            self.answerer.plan = plan
        if sid is None:
            self._sids += 1
            sid = f"SM{self._sids:032d}"
        reply = self.handler.handle(InboundMessage(sid, sender, body=body, **extra), Deadline(5))
        return reply.text


class Worker:
    """One app instance (as one gunicorn worker would be), built by the `spied_app`
    fixture, with spies on its work."""

    def __init__(self, spied_app, signed_post, **settings) -> None:
        self.app = spied_app(**settings)
        self.client, self.post = self.app.test_client(), signed_post
        handler = self.app.extensions["bot"].handler
        self.answerer, self.knowledge = handler.answerer, handler.knowledge
        self.retrievals = 0

    def ask(self, body: str, sender: str) -> str:
        searched = len(self.knowledge.queries)
        (text,) = reply_texts_of(self.post(self.client, twilio_form(body, sender)))
        # Only searches made answering count: `search` run on this app's CLI spies too.
        self.retrievals += len(self.knowledge.queries) - searched
        return text

    @property
    def work(self) -> tuple[int, int]:
        """(retrievals made answering `ask`, model calls) so far."""
        return self.retrievals, len(self.answerer.calls)
