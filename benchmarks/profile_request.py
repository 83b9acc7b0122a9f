"""Where one webhook request's time goes, stage by stage, one message at a time.

    python benchmarks/profile_request.py [--messages 400] [--model] [--postgres]
                                         [--profiler pyinstrument|cprofile|cprofile-own]
                                         [--no-qmsum] [--qmsum-questions]

Builds the app in this process as `gunicorn.conf.py` would run it (signatures checked, the
per-sender limit on, INFO logging to a file and to stdout, which is sent to a file here),
ingests the sample knowledge (and QMSum when present) as `benchmarks/webhook_load.py`
does, then calls the WSGI app directly with pre-built, signed requests from many senders
(first turns, like the load benchmark's) and times each stage with wrappers around the
functions that do it. A stage's time excludes the stages inside it (the log lines a
retrieval writes count as logging); "rest" is what no stage covers: Flask and Werkzeug,
form decoding, mention and command parsing, the use case's own glue.

Model-free by default: no key, so answers are extractive (the answer stage is their
sentence scoring). `--model` starts benchmarks/mistral_standin.py at latency 0 and answers
through the real `mistralai` SDK instead, as the load benchmark's scenario (a) does.
`--profiler` adds a call-tree profile of the same messages (pyinstrument, from
requirements-dev.txt, or the standard library's cProfile). `--qmsum-questions` asks QMSum's
272 questions instead of a few sample ones: the answerer's per-process caches meet fewer
passages twice, as with a team whose questions rarely repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlencode

from _common import QMSUM, REPO_ROOT, percentile, table, webhook_form
from twilio.request_validator import RequestValidator

TOKEN = "profile-auth-token-0123456789abcdef"
PUBLIC_URL = "https://profile.example.com"
WEBHOOK = "/whatsapp/webhook"
SAMPLE = REPO_ROOT / "knowledge" / "sample"
QUESTIONS = (
    "who attended the UNEA meeting?",
    "what did we decide about the UK timeline?",
    "what is the funding status?",
    "which countries were prioritised and why?",
    "what are the next steps for the UNEA preparation?",
    "when is the UK engagement plan due?",
    "what does the handbook say about meetings?",
    "what was agreed on the budget?",
    "what remote control features did the product team discuss?",
    "what did the committee ask the minister about childcare?",
)

# (stage, where, attribute): `where` names a module ("bot.web.blueprint"), a class
# ("flask_limiter.Limiter", patched for every instance) or one of the app's components
# ("history", "knowledge", "answerer", "metrics", "handler"). Missing attributes are skipped,
# so the script runs against older and newer versions of the code alike.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("signature check", "bot.web.blueprint", "verify_twilio_request"),
    ("form parsing", "bot.web.blueprint", "parse_form"),
    ("rate limiter", "flask_limiter.Limiter", "_check_request_limit"),
    ("claim / de-duplication", "history", "claim"),
    ("history: recent turns", "history", "recent"),
    ("knowledge version", "knowledge", "version"),
    ("answer cache: lookup", "history", "cached_answer"),
    ("retrieval", "knowledge", "search"),
    ("answer", "answerer", "answer"),
    ("answer cache: store", "history", "cache_answer"),
    ("history: store exchange", "history", "append_exchange"),
    ("history: complete delivery", "history", "complete"),
    ("TwiML", "bot.web.blueprint", "twiml_response"),
    ("metrics", "metrics", "incr"),
    ("metrics", "metrics", "seen"),
    ("metrics", "metrics", "observe"),
    ("logging (request thread)", "logging.Logger", "_log"),
    ("request id", "bot.web.blueprint", "new_request_id"),
)
REST = "rest (Flask, Werkzeug, parsing, glue)"


class StageClock:
    """Exclusive time per stage, elapsed and this thread's CPU: a stage running inside
    another pauses the outer one. CPU time is what other work on the machine does not
    inflate; elapsed time adds waits (locks, I/O, being descheduled)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []  # [started, cpu started, excluded, cpu excluded]

    def clear(self) -> None:
        self.totals.clear()
        self.cpu.clear()
        self.calls.clear()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        entry = [time.perf_counter(), time.thread_time(), 0.0, 0.0]
        self._stack.append(entry)
        try:
            yield
        finally:
            self._stack.pop()
            spent = time.perf_counter() - entry[0]
            cpu = time.thread_time() - entry[1]
            self.totals[name] += spent - entry[2]
            self.cpu[name] += cpu - entry[3]
            self.calls[name] += 1
            if self._stack:
                self._stack[-1][2] += spent
                self._stack[-1][3] += cpu

    def wrap(self, name: str, function: Callable) -> Callable:
        clock = self

        def timed(*args, **kwargs):
            with clock.stage(name):
                return function(*args, **kwargs)

        timed.__wrapped__ = function  # type: ignore[attr-defined]
        return timed


COMPONENTS = ("history", "knowledge", "answerer", "metrics", "handler")


def _module_or_class(where: str) -> object | None:
    """ "bot.web.blueprint" (a module) or "flask_limiter.Limiter" (a class in one)."""
    import importlib

    try:
        return importlib.import_module(where)
    except ImportError:
        module_name, _, attr = where.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            return None


def instrument(clock: StageClock, components: dict[str, object] | None = None) -> list[str]:
    """Wrap each stage's function: the module- and class-level ones without `components`,
    else those of the app's components. Returns the stages found."""
    found = []
    for name, where, attr in STAGES:
        if components is None:
            target = None if where in COMPONENTS else _module_or_class(where)
        else:
            target = components.get(where)
        if target is None or not hasattr(target, attr):
            continue
        # On a class the wrapper is a plain function, so `self` arrives as its first argument.
        setattr(target, attr, clock.wrap(name, getattr(target, attr)))
        found.append(name)
    return found


def write_config(scratch: Path) -> Path:
    """Everyone allowed, a limit no run reaches (it is still checked), as webhook_load.py."""
    config = scratch / "config.json"
    config.write_text(
        json.dumps({"whatsapp": {"allowed_senders": ["*"], "rate_limit": "100000 per minute"}})
    )
    return config


def qmsum_questions() -> tuple[str, ...]:
    """Every question of the QMSum meetings, specific and general (272): far more distinct
    passages than QUESTIONS bring back, so few are met twice."""
    found = []
    for path in sorted(QMSUM.glob("*.json")):
        meeting = json.loads(path.read_text(encoding="utf-8"))
        for key in ("specific_query_list", "general_query_list"):
            found += [item["query"] for item in meeting.get(key, [])]
    return tuple(found)


def build_requests(
    count: int, senders: int, questions: Sequence[str] = QUESTIONS
) -> list[tuple[bytes, str]]:
    """Signed form bodies from `senders` numbers, each question distinct (no cache hits)."""
    validator = RequestValidator(TOKEN)
    prefix = uuid.uuid4().hex[:8]
    built = []
    for n in range(1, count + 1):
        question = f"{questions[n % len(questions)]} (#{10000 + n})"
        form = webhook_form(n, senders, prefix, question)
        built.append(
            (urlencode(form).encode(), validator.compute_signature(PUBLIC_URL + WEBHOOK, form))
        )
    return built


def environ_for(body: bytes, signature: str) -> dict:
    """A WSGI environ as gunicorn builds it for one webhook POST from loopback."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": WEBHOOK,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_TWILIO_SIGNATURE": signature,
        "HTTP_CONNECTION": "close",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(app, environ: dict) -> tuple[str, bytes]:
    """One request through the WSGI app, its body read to the end (as the server does)."""
    status: list[str] = []

    def start_response(line: str, headers: list, exc_info=None) -> Callable:
        status.append(line)
        return lambda data: None

    result = app.wsgi_app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0], body


def run(args: argparse.Namespace) -> dict:
    """`measure` in a scratch directory, removed afterwards."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="profile-request-") as tmp:
        try:
            return measure(args, Path(tmp))
        finally:
            os.chdir(cwd)


def measure(args: argparse.Namespace, scratch: Path) -> dict:
    """Build the app, warm it up, time `args.messages` requests; returns the figures."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CONFIG_PATH": str(write_config(scratch)),
        "DATA_DIR": str(scratch / "data"),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "LOG_LEVEL": "INFO",
        **dict(item.split("=", 1) for item in args.env),
    }
    standin = None
    if args.model:
        from webhook_load import StandIn

        standin = StandIn(scratch)
        env.update(MISTRAL_API_KEY="profile-key", MISTRAL_SERVER_URL=standin.url)
    cluster = None
    if args.postgres:
        from webhook_load import start_postgres

        cluster, why = start_postgres()
        if cluster is None:
            raise SystemExit(f"PostgreSQL not available: {why}")
        env["DATABASE_URL"] = cluster.url
    os.chdir(scratch)  # no .env of the repository is read
    clock = StageClock()
    # Before the app exists: flask-limiter binds its before_request hook at init.
    instrument(clock)
    console = open(scratch / "stdout.log", "w", encoding="utf-8")  # noqa: SIM115
    real_stdout, sys.stdout = sys.stdout, console  # where the app's console handler writes
    try:
        from bot import create_app

        app = create_app(environ=env)
        services = app.extensions["bot"]
        runner = app.test_cli_runner()
        paths = [str(SAMPLE)] + ([str(QMSUM)] if args.qmsum and QMSUM.is_dir() else [])
        ingested = runner.invoke(args=["ingest", *paths])
        if ingested.exit_code != 0:
            raise SystemExit(f"ingest failed: {ingested.output[-2000:]}")
        lines = ingested.output.strip().splitlines()
        summary = next((line for line in lines if line.startswith("Ingested")), "")
        components = {
            "history": services.history,
            "knowledge": services.knowledge,
            "answerer": services.answerer,
            "metrics": services.metrics,
            "handler": services.handler,
        }
        instrument(clock, components)
        questions = qmsum_questions() if args.qmsum_questions else QUESTIONS
        requests = build_requests(args.warmup + args.messages, args.senders, questions)
        for body, signature in requests[: args.warmup]:
            status, _ = call(app, environ_for(body, signature))
            assert status.startswith("200"), status
        clock.clear()
        profiler = _profiler(args.profiler)
        latencies = []
        replies = 0
        cpu_before = time.process_time()
        with profiler:
            for body, signature in requests[args.warmup :]:
                environ = environ_for(body, signature)
                with clock.stage(REST):
                    started = time.perf_counter()
                    status, out = call(app, environ)
                    latencies.append(time.perf_counter() - started)
                assert status.startswith("200"), status
                replies += b"<Message>" in out
            for handler in logging.getLogger().handlers:
                handler.flush()  # lines still queued for the log writer count too
        cpu = time.process_time() - cpu_before
        services.close()
    finally:
        sys.stdout = real_stdout
        console.close()
        if standin is not None:
            standin.process.stop(5)
        if cluster is not None:
            cluster.close()
    return {
        "summary": summary,
        "totals": dict(clock.totals),
        "stage_cpu": dict(clock.cpu),
        "calls": dict(clock.calls),
        "latencies": latencies,
        "replies": replies,
        "cpu": cpu,
        "profile": profiler.report(),
        "history": "postgresql" if args.postgres else "sqlite",
        "answers": "mistralai SDK, stand-in at latency 0" if args.model else "extractive (no key)",
        "questions": f"QMSum's {len(questions)}" if args.qmsum_questions else f"{len(questions)}",
    }


class _NoProfiler:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def report(self) -> str:
        return ""


class _PyInstrument(_NoProfiler):
    def __init__(self) -> None:
        from pyinstrument import Profiler

        self.profiler = Profiler(interval=0.0002)

    def __enter__(self) -> None:
        self.profiler.start()

    def __exit__(self, *exc: object) -> None:
        self.profiler.stop()

    def report(self) -> str:
        return self.profiler.output_text(unicode=False, color=False, show_all=False)


class _CProfile(_NoProfiler):
    def __init__(self, sort: str) -> None:
        import cProfile

        self.profiler = cProfile.Profile()
        self.sort = sort  # "cumulative" (what calls what) or "tottime" (where CPU goes)

    def __enter__(self) -> None:
        self.profiler.enable()

    def __exit__(self, *exc: object) -> None:
        self.profiler.disable()

    def report(self) -> str:
        import pstats

        out = io.StringIO()
        pstats.Stats(self.profiler, stream=out).sort_stats(self.sort).print_stats(40)
        return out.getvalue()


def _profiler(kind: str) -> _NoProfiler:
    if kind == "pyinstrument":
        return _PyInstrument()
    if kind.startswith("cprofile"):
        return _CProfile("tottime" if kind == "cprofile-own" else "cumulative")
    return _NoProfiler()


def report(figures: dict, messages: int) -> str:
    """The per-stage table (ms per message, share of the request) and the latencies."""
    totals = figures["totals"]
    whole = sum(figures["latencies"])
    whole_cpu = sum(figures["stage_cpu"].values())
    rows = []
    order = list(dict.fromkeys(name for name, _, _ in STAGES)) + [REST]
    for name in order:
        if name not in totals:
            continue
        spent = totals[name]
        calls = figures["calls"].get(name, 0)
        cpu = figures["stage_cpu"].get(name, 0.0)
        rows.append(
            [
                name,
                f"{cpu * 1000 / messages:.3f}",
                f"{spent * 1000 / messages:.3f}",
                f"{calls / messages:.1f}",
                f"{100 * cpu / whole_cpu:.0f}%" if whole_cpu else "-",
            ]
        )
    rows.append(
        [
            "**request**",
            f"**{whole_cpu * 1000 / messages:.3f}**",
            f"**{whole * 1000 / messages:.3f}**",
            "",
            "100%",
        ]
    )
    lat = figures["latencies"]
    lines = [
        f"Profile of {messages} messages, one at a time, in process: {figures['history']} "
        f"history, answers {figures['answers']}, {figures['questions']} questions. "
        f"{figures['summary']}",
        "",
        table(["stage", "CPU ms / msg", "elapsed ms / msg", "calls / msg", "CPU share"], rows),
        "",
        f"Request p50 {statistics.median(lat) * 1000:.2f} ms, p95 "
        f"{percentile(lat, 0.95) * 1000:.2f} ms, p99 {percentile(lat, 0.99) * 1000:.2f} ms; "
        f"process CPU {figures['cpu'] * 1000 / messages:.2f} ms per message (background "
        f"threads included); {figures['replies']} of {messages} replies carried a message.",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="timed messages")
    parser.add_argument("--warmup", type=int, default=50, help="untimed messages first")
    parser.add_argument("--senders", type=int, default=2000, help="distinct senders")
    parser.add_argument("--model", action="store_true", help="answer through the SDK stand-in")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL history")
    parser.add_argument("--no-qmsum", dest="qmsum", action="store_false", help="sample only")
    parser.add_argument(
        "--qmsum-questions",
        action="store_true",
        help="ask QMSum's 272 questions instead of the load benchmark's few",
    )
    parser.add_argument(
        "--profiler",
        choices=("none", "pyinstrument", "cprofile", "cprofile-own"),
        default="none",
        help="cprofile-own: functions by their own time, not their callees'",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra app env"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args)
    print(report(figures, args.messages))
    if figures["profile"]:
        print()
        print(figures["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
