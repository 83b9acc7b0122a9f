"""Webhook load: the bot under gunicorn against a bare TwiML app, with a local model stand-in.

    python benchmarks/webhook_load.py [--history sqlite,postgresql] [--threads N] [--quick]

Starts, on 127.0.0.1 only: the Mistral stand-in (benchmarks/mistral_standin.py), the bare
Flask app (benchmarks/bare_app.py) and the bot (`app:app`), both under gunicorn with
gunicorn.conf.py, and a load generator in this process (asyncio, raw HTTP/1.1, one new
connection per message like Twilio's, every request built and signed before the clock
starts). Scenarios:

  (a) model-free (no key, so extractive answers): the bot's own work per message, one at
      a time, and its throughput at a fixed concurrency as a share of the bare app's;
  (b) model latency 3 s with 200 conversations in flight;
  (c) as (b), with the model hanging for 10% of the questions (they carry a marker word).

Writes its section of docs/PERFORMANCE.md (or --doc PATH; --no-write to skip) and prints
the tables. Every run is bounded in requests and time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from _common import (
    PERFORMANCE_MD,
    QMSUM,
    REPO_ROOT,
    Process,
    children,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    machine_line,
    ms,
    percentile,
    rss_mb,
    table,
    wait_http,
    webhook_form,
    write_section,
)
from twilio.request_validator import RequestValidator

SECTION = "webhook_load"
TOKEN = "bench-auth-token-0123456789abcdef"
PUBLIC_URL = "https://bench.example.com"
WEBHOOK = "/whatsapp/webhook"
TWILIO_DEADLINE = 15.0  # Twilio gives up on a webhook after 15 s, connect time included
CLIENT_TIMEOUT = 20.0  # long enough to see how late a late reply is
HANG_MARKER = "zebracrossing"  # in no document; the stand-in hangs on questions carrying it
SAMPLE = REPO_ROOT / "knowledge" / "sample"
QUESTIONS = (
    "who attended the UNEA meeting?",
    "what did we decide about the UK timeline?",
    "what did we decide about Germany?",
    "why was that decided?",
    "what is the funding status?",
    "which countries were prioritised and why?",
    "what are the next steps for the UNEA preparation?",
    "who owns the funding follow-up?",
    "when is the UK engagement plan due?",
    "what does the handbook say about meetings?",
    "what did the funding check-in conclude?",
    "what risks were raised about the timeline?",
    "what was agreed on the budget?",
    "summarise the country prioritisation meeting",
    "who is responsible for the partner outreach?",
    "what did the team say about the evaluation?",
    "what decisions were postponed?",
    "how should new members get started?",
    "what remote control features did the product team discuss?",
    "what did the committee ask the minister about childcare?",
    "what was said about the interface design?",
    "which targets were discussed for the project?",
    "what did they decide about the evaluation criteria?",
)


# -- processes -----------------------------------------------------------------------


class StandIn:
    """The Mistral stand-in process and its control endpoint."""

    def __init__(self, scratch: Path) -> None:
        script = Path(__file__).with_name("mistral_standin.py")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {"PATH": os.environ.get("PATH", "")}
        args = [sys.executable, str(script), "--port", str(port)]
        self.process = Process(args, env, scratch / "standin.log", scratch)
        wait_http(self.url + "/_stats", self.process, 20)

    def control(self, delay: float, hang_marker: str = "", hang: float = 60.0) -> None:
        body = json.dumps({"delay": delay, "hang_marker": hang_marker, "hang": hang}).encode()
        request = urllib.request.Request(self.url + "/_control", data=body, method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/_stats", timeout=5) as response:
            return json.loads(response.read())


@dataclass
class Server:
    """One gunicorn (bot or bare) started with gunicorn.conf.py."""

    name: str
    history: str
    process: Process
    port: int

    @classmethod
    def start(cls, name: str, history: str, app: str, env: dict[str, str], scratch: Path) -> Server:
        port = free_port()
        env = dict(env, PORT=str(port))
        args = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py")]
        # Only the bind address differs from gunicorn.conf.py: loopback, not 0.0.0.0.
        args += ["--bind", f"127.0.0.1:{port}", app]
        process = Process(args, env, scratch / f"{name}-{history or 'none'}.log", scratch)
        wait_http(f"http://127.0.0.1:{port}/health", process)
        time.sleep(1.0)  # let the second worker finish booting too
        return cls(name, history, process, port)

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        self.process.stop()


# -- requests and the load generator ---------------------------------------------------


class Requests:
    """Pre-built, pre-signed webhook requests from many senders, unique MessageSids."""

    def __init__(self, senders: int) -> None:
        self.senders = senders
        self.validator = RequestValidator(TOKEN)
        self.prefix = uuid.uuid4().hex[:8]
        self.counter = 0

    def build(self, port: int, count: int, hang_every: int = 0) -> list[bytes]:
        url = PUBLIC_URL + WEBHOOK
        built = []
        for _ in range(count):
            n = self.counter = self.counter + 1
            # A distinct number per question, so no answer cache could serve repeats.
            question = f"{QUESTIONS[n % len(QUESTIONS)]} (#{10000 + n})"
            if hang_every and n % hang_every == 0:
                question += f" {HANG_MARKER}"
            form = webhook_form(n, self.senders, self.prefix, question)
            body = urlencode(form).encode()
            head = (
                f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"X-Twilio-Signature: {self.validator.compute_signature(url, form)}\r\n"
                "Connection: close\r\n\r\n"
            )
            built.append(head.encode() + body)
        return built


@dataclass
class Outcome:
    """One request as the sender saw it."""

    seconds: float
    status: int = 0
    reply: bool = False  # a <Message> came back
    model: bool = False  # ... written by the model (not the extractive fallback)
    error: str = ""


async def send(port: int, payload: bytes, timeout: float) -> Outcome:
    """One request on a new connection; the clock includes connecting, like Twilio's."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            data = await reader.read()  # Connection: close, so until EOF
    except TimeoutError:
        return Outcome(time.perf_counter() - started, error="timeout")
    except OSError as exc:
        return Outcome(time.perf_counter() - started, error=type(exc).__name__)
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - started
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head[9:12]) if head.startswith(b"HTTP/1.") and head[9:12].isdigit() else 0
    return Outcome(
        seconds,
        status,
        reply=b"<Message>" in body,
        model=b"Stub answer" in body,
        error="" if status == 200 else f"http {status}",
    )


async def _load(
    port: int, payloads: list[bytes], concurrency: int, duration: float, ramp: float
) -> tuple[list[Outcome], float]:
    queue = iter(payloads)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    stop_at = started + duration

    async def sender(index: int) -> None:
        # Spread the first requests over `ramp` seconds instead of one burst.
        await asyncio.sleep(ramp * index / concurrency)
        for payload in queue:
            if time.perf_counter() >= stop_at:
                return
            outcomes.append(await send(port, payload, CLIENT_TIMEOUT))

    await asyncio.gather(*(sender(i) for i in range(concurrency)))
    return outcomes, time.perf_counter() - started


@dataclass
class Run:
    """The figures of one load run."""

    app: str
    history: str
    scenario: str
    concurrency: int
    model_seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    worker_rss_mb: float = 0.0
    hung_calls: int = 0
    machine_busy: float = 0.0  # cores busy on average, everything on the machine included

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200 and o.reply]

    @property
    def errors(self) -> int:
        return len(self.outcomes) - len(self.ok)

    @property
    def late(self) -> int:
        return sum(o.seconds > TWILIO_DEADLINE for o in self.outcomes)

    @property
    def fallbacks(self) -> int:
        return sum(not o.model for o in self.ok)

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed else 0.0

    def latency(self, share: float) -> float:
        return percentile([o.seconds for o in self.outcomes], share)

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.server_cpu / max(len(self.outcomes), 1)


def measure(
    server: Server,
    requests: Requests,
    scenario: str,
    concurrency: int,
    model_seconds: float,
    count: int,
    duration: float,
    ramp: float = 0.0,
    hang_every: int = 0,
    standin: StandIn | None = None,
) -> Run:
    """Build the requests, then run them against `server` and collect the figures."""
    payloads = requests.build(server.port, count, hang_every)
    workers = server.workers()
    hung_before = standin.stats()["hung"] if standin else 0
    cpu_before, busy_before = cpu_seconds(workers), machine_busy_seconds()
    outcomes, elapsed = asyncio.run(_load(server.port, payloads, concurrency, duration, ramp))
    run = Run(server.name, server.history, scenario, concurrency, model_seconds, outcomes, elapsed)
    run.server_cpu = cpu_seconds(workers) - cpu_before
    run.machine_busy = (machine_busy_seconds() - busy_before) / elapsed if elapsed else 0.0
    run.worker_rss_mb = max((rss_mb(pid) for pid in workers), default=0.0)
    run.hung_calls = (standin.stats()["hung"] - hung_before) if standin else 0
    print(_summary(run), flush=True)
    return run


def _summary(run: Run) -> str:
    return (
        f"{run.scenario:<8} {run.app:<5} {run.history or '-':<10} c={run.concurrency:<3} "
        f"n={len(run.outcomes):<5} ok={len(run.ok):<5} err={run.errors} late={run.late} "
        f"fallback={run.fallbacks} {run.throughput:7.1f} msg/s  p50 {ms(run.latency(0.5))} "
        f"p95 {ms(run.latency(0.95))} p99 {ms(run.latency(0.99))} max {ms(run.latency(1.0))} "
        f"ms  cpu {run.cpu_ms_per_message:.1f} ms/msg  rss {run.worker_rss_mb:.0f} MB  "
        f"machine busy {run.machine_busy:.2f} cores"
    )


# -- the benchmark ---------------------------------------------------------------------


@dataclass
class Plan:
    """Sizes of each scenario (the defaults, or tiny ones for the smoke test)."""

    a_count: int = 400
    a_concurrency: int = 32
    a_seconds: float = 15.0
    in_flight: int = 200
    model_seconds: float = 3.0
    b_seconds: float = 30.0
    hang_every: int = 10
    budget: float = 12.0  # whatsapp.response_timeout_seconds, the shipped default
    senders: int = 2000
    scenarios: tuple[str, ...] = ("a", "b", "c")

    @classmethod
    def quick(cls) -> Plan:
        return cls(10, 4, 1.0, 10, 0.2, 1.5, 10, 2.0, 50)


def bot_env(scratch: Path, args: argparse.Namespace, plan: Plan, standin: StandIn) -> dict:
    """The environment both apps run with: gunicorn settings, signatures, the stand-in."""
    config = scratch / "config.json"
    # The shipped config.json admits nobody once a token is set; rate limits are per sender.
    config.write_text(
        json.dumps(
            {
                "whatsapp": {
                    "allowed_senders": ["*"],
                    "rate_limit": "100000 per minute",
                    "response_timeout_seconds": plan.budget,
                }
            }
        )
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "CONFIG_PATH": str(config),
        "DATA_DIR": str(scratch / "data"),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "MISTRAL_API_KEY": "bench-key",
        "MISTRAL_SERVER_URL": standin.url,
        "LOG_LEVEL": "INFO",
        **dict(item.split("=", 1) for item in args.env),
    }


def ingest(env: dict[str, str], scratch: Path, with_qmsum: bool) -> str:
    """Load the sample knowledge (and QMSum when present); returns the CLI's summary."""
    paths = [str(SAMPLE)] + ([str(QMSUM)] if with_qmsum and QMSUM.is_dir() else [])
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "ingest", *paths],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr.strip()[-2000:]}")
    # The summary's first line says what was stored; lines after it name files left out.
    lines = [line for line in done.stdout.splitlines() if line.startswith("Ingested")]
    return lines[0] if lines else ""


def start_postgres() -> tuple[object | None, str]:
    """A throwaway cluster via tests/services/postgres.py, or (None, why not)."""
    try:
        from tests.services.postgres import LocalCluster
    except ImportError as exc:
        return None, f"cannot import the test cluster helper ({exc})"
    try:
        return LocalCluster(), ""
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # pytest.skip() raises a BaseException: no PostgreSQL here
        return None, str(exc).strip() or type(exc).__name__


def run_bot(
    history: str, env: dict, scratch: Path, plan: Plan, requests: Requests, standin: StandIn
) -> list[Run]:
    """The scenarios of the plan against the bot on one history backend."""
    runs = []
    if "a" in plan.scenarios:
        # Model-free, as a deployment without a key answers: the bot's own work alone.
        free = {k: v for k, v in env.items() if not k.startswith("MISTRAL_")}
        server = Server.start("bot", history, "app:app", free, scratch)
        try:
            warm = (plan.a_concurrency, 0.0, plan.a_concurrency * 4, 60)
            measure(server, requests, "warm-up", *warm)
            runs.append(measure(server, requests, "a", 1, 0.0, plan.a_count, 120))
            count = int(plan.a_seconds * 2000)
            runs.append(
                measure(server, requests, "a", plan.a_concurrency, 0.0, count, plan.a_seconds)
            )
        finally:
            server.stop()
    if not {"b", "c"} & set(plan.scenarios):
        return runs
    b_count = int(plan.b_seconds * plan.in_flight / plan.model_seconds) + plan.in_flight
    b_args = (plan.in_flight, plan.model_seconds, b_count, plan.b_seconds)
    server = Server.start("bot", history, "app:app", env, scratch)
    try:
        # One unmeasured round at full concurrency first: every thread gthread starts
        # opens its own SQLite connections once, which is start-up cost, not load.
        standin.control(plan.model_seconds / 3)
        warm = (plan.in_flight, plan.model_seconds / 3, plan.in_flight * 2, 60)
        measure(server, requests, "warm-up", *warm, ramp=plan.model_seconds / 3)
        if "b" in plan.scenarios:
            standin.control(plan.model_seconds)
            runs.append(measure(server, requests, "b", *b_args, ramp=plan.model_seconds))
        if "c" in plan.scenarios:
            standin.control(plan.model_seconds, HANG_MARKER)
            runs.append(
                measure(
                    server, requests, "c", *b_args, ramp=plan.model_seconds,
                    hang_every=plan.hang_every, standin=standin,
                )
            )  # fmt: skip
    finally:
        server.stop()
        standin.control(0.0)
    return runs


def run_bare(env: dict, scratch: Path, plan: Plan, requests: Requests) -> list[Run]:
    """The baselines: the bare app at model latency 0, then with each reply waiting."""
    runs = []
    if "a" in plan.scenarios:
        server = Server.start("bare", "", "benchmarks.bare_app:create_app()", env, scratch)
        try:
            warm = plan.a_concurrency * 4
            measure(server, requests, "warm-up", plan.a_concurrency, 0.0, warm, 60)
            runs.append(measure(server, requests, "a", 1, 0.0, plan.a_count, 120))
            count = int(plan.a_seconds * 4000)
            runs.append(
                measure(server, requests, "a", plan.a_concurrency, 0.0, count, plan.a_seconds)
            )
        finally:
            server.stop()
    if not {"b", "c"} & set(plan.scenarios):
        return runs
    slow_env = dict(env, BARE_DELAY_SECONDS=str(plan.model_seconds))
    server = Server.start("bare", "", "benchmarks.bare_app:create_app()", slow_env, scratch)
    try:
        b_count = int(plan.b_seconds * plan.in_flight / plan.model_seconds) + plan.in_flight
        runs.append(
            measure(
                server, requests, "b", plan.in_flight, plan.model_seconds, b_count,
                plan.b_seconds, ramp=plan.model_seconds,
            )
        )  # fmt: skip
    finally:
        server.stop()
    return runs


# -- the report ------------------------------------------------------------------------


def _label(run: Run) -> str:
    if run.app == "bare":
        wait = f", sleeps {run.model_seconds:g} s" if run.model_seconds else ""
        return f"bare TwiML app{wait}"
    return f"bot, {run.history} history"


def _find(runs: Sequence[Run], app: str, scenario: str, concurrency: int, history: str = ""):
    for run in runs:
        if (run.app, run.scenario, run.concurrency) == (app, scenario, concurrency) and (
            not history or run.history == history
        ):
            return run
    return None


def report(runs: list[Run], plan: Plan, args: argparse.Namespace, notes: list[str]) -> str:
    """The Markdown section: settings, one table per scenario, targets met or not."""
    a_rows = [
        [
            _label(r), r.concurrency, len(r.outcomes), r.errors, f"{r.throughput:,.1f}",
            ms(r.latency(0.5)), ms(r.latency(0.95)), ms(r.latency(0.99)), ms(r.latency(1.0)),
            f"{r.cpu_ms_per_message:.1f}", f"{r.machine_busy:.2f}",
        ]
        for r in runs
        if r.scenario == "a"
    ]  # fmt: skip
    flight_rows = []
    for r in runs:
        if r.scenario in ("b", "c"):
            flight_rows.append(
                [
                    f"({r.scenario}) {_label(r)}", len(r.outcomes), len(r.ok), r.errors, r.late,
                    f"{r.fallbacks} ({r.hung_calls} hung calls)" if r.scenario == "c"
                    else r.fallbacks,
                    f"{r.throughput:,.1f}", f"{r.latency(0.5):.2f}", f"{r.latency(0.95):.2f}",
                    f"{r.latency(0.99):.2f}", f"{r.latency(1.0):.2f}", f"{r.worker_rss_mb:.0f}",
                    f"{r.machine_busy:.2f}",
                ]
            )  # fmt: skip
    lines = [
        "## Webhook load",
        "",
        machine_line(),
        "",
        f"Command: `python benchmarks/webhook_load.py{' --quick' if args.quick else ''}` "
        "(part of `make bench`). Both apps run under gunicorn with `gunicorn.conf.py` "
        f"(gthread, `WEB_CONCURRENCY={args.workers}`, `GUNICORN_THREADS={args.threads}`, "
        "bound to 127.0.0.1), embedded defaults otherwise: SQLite FTS5 knowledge, SQLite or "
        "PostgreSQL history, INFO logging, Twilio signatures checked, "
        f"`response_timeout_seconds` {plan.budget:g}. In (a) the bot has no Mistral key, so "
        "it answers by quoting passages, as a deployment without one does; in (b) and (c) "
        "the model is `benchmarks/mistral_standin.py`, spoken to through the real "
        "`mistralai` SDK. The "
        "load generator (asyncio, same machine) opens a new connection per message, from "
        f"{plan.senders:,} senders, with requests signed before the clock starts. Latency "
        "is what the sender sees, connecting included.",
        "",
        "\n\n".join(notes),
        "",
        "### (a) The bot's own work: model-free (c = concurrent requests)",
        "",
        table(
            [
                "app",
                "c",
                "requests",
                "errors",
                "msg/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "server CPU ms/msg",
                "machine busy (cores)",
            ],
            a_rows,
        ),  # fmt: skip
        "",
        f"### (b) {plan.in_flight} in flight, model latency {plan.model_seconds:g} s; "
        f"(c) the same with the model hanging for 1 question in {plan.hang_every}",
        "",
        "Latencies in seconds; `past 15 s` counts replies Twilio would have dropped; "
        "`fallbacks` are extractive answers given instead of the model's.",
        "",
        table(
            [
                "run",
                "requests",
                "answered",
                "errors",
                "past 15 s",
                "fallbacks",
                "msg/s",
                "p50 s",
                "p95 s",
                "p99 s",
                "max s",
                "worker RSS MB",
                "machine busy (cores)",
            ],
            flight_rows,
        ),  # fmt: skip
        "",
        "### Targets",
        "",
        *targets(runs, plan),
    ]
    return "\n".join(lines)


def targets(runs: Sequence[Run], plan: Plan) -> list[str]:
    """One line per target, per history backend: the figure, the target, met or not."""
    lines = []

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    bare1 = _find(runs, "bare", "a", 1)
    bare_c = _find(runs, "bare", "a", plan.a_concurrency)
    for history in dict.fromkeys(r.history for r in runs if r.app == "bot"):
        one = _find(runs, "bot", "a", 1, history)
        many = _find(runs, "bot", "a", plan.a_concurrency, history)
        if one and bare1:
            # The bot's own work: what it adds to the bare app's round trip (connecting,
            # gunicorn, the load generator), measured one message at a time.
            p50, p99, floor = one.latency(0.5), one.latency(0.99), bare1.latency(0.5)
            own50, own99 = p50 - floor, p99 - floor
            lines.append(
                f"- (a) {history}: the bot's own work per message (its latency one at a time "
                f"minus the bare app's p50 of {ms(floor)} ms): p50 {ms(own50)} ms, p99 "
                f"{ms(own99)} ms (target p50 < 5 ms; raw p50 {ms(p50)} ms, p99 "
                f"{ms(p99)} ms): {verdict(own50 < 0.005)}"
            )
        if many and bare_c:
            ratio = many.throughput / bare_c.throughput if bare_c.throughput else 0.0
            tail = many.latency(0.99)
            lines.append(
                f"- (a) {history}: throughput at c={plan.a_concurrency} {many.throughput:,.0f} "
                f"msg/s = {ratio:.2f} of the bare app's {bare_c.throughput:,.0f}, p99 "
                f"{ms(tail)} ms (targets >= 0.5 and < 100 ms): "
                f"{verdict(ratio >= 0.5 and tail < 0.100 and many.errors == 0)}"
            )
        for scenario in ("b", "c"):
            run = _find(runs, "bot", scenario, plan.in_flight, history)
            if run is None:
                continue
            answered = len(run.ok) / max(len(run.outcomes), 1)
            p99 = run.latency(0.99)
            if scenario == "b":
                met = answered == 1.0 and run.late == 0 and p99 < 2 * plan.model_seconds
                goal = f"100% answered, p99 < {2 * plan.model_seconds:g} s, none past 15 s"
            else:
                met = answered == 1.0 and run.late == 0
                goal = "100% answered before 15 s"
            lines.append(
                f"- ({scenario}) {history}: {answered:.1%} answered, p99 {p99:.2f} s, max "
                f"{run.latency(1.0):.2f} s, {run.late} past 15 s ({goal}): {verdict(met)}"
            )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", default="sqlite,postgresql", help="backends to run")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="GUNICORN_THREADS (default: gunicorn.conf.py's, or enough for the in-flight run)",
    )
    parser.add_argument("--scenarios", default="a,b,c", help="which of a, b, c to run")
    parser.add_argument("--senders", type=int, default=0, help="distinct senders (default 200)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra server env"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--no-qmsum", action="store_true", help="sample knowledge only")
    parser.add_argument("--doc", type=Path, default=PERFORMANCE_MD, help="where to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def default_threads() -> int:
    """GUNICORN_THREADS as gunicorn.conf.py takes it: the settings' default."""
    from bot.settings import Settings

    return Settings().gunicorn_threads


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    plan.scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    plan.senders = args.senders or plan.senders
    notes: list[str] = []
    if not args.threads:
        args.threads = default_threads()
        if args.workers * args.threads < plan.in_flight and {"b", "c"} & set(plan.scenarios):
            # gthread answers one request per thread and queues the rest. Connections are not
            # spread evenly over the workers, so a quarter more threads than conversations.
            needed = -(-plan.in_flight * 5 // (4 * args.workers) // 8) * 8
            notes.append(
                f"`gunicorn.conf.py` defaults to {args.workers} × {args.threads} threads, fewer "
                f"than {plan.in_flight} in flight; this run sets `GUNICORN_THREADS={needed}`."
            )
            args.threads = needed
    wanted = [h.strip() for h in args.history.split(",") if h.strip()]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp:
        scratch = Path(tmp)
        standin = StandIn(scratch)
        cluster = None
        try:
            env = bot_env(scratch, args, plan, standin)
            summary = ingest(env, scratch, with_qmsum=not args.no_qmsum and not args.quick)
            notes.append(f"Knowledge: {summary}")
            requests = Requests(plan.senders)
            runs += run_bare(env, scratch, plan, requests)
            for history in wanted:
                history_env = dict(env, DATA_DIR=str(scratch / "data"))
                if history == "postgresql":
                    cluster, why = start_postgres()
                    if cluster is None:
                        notes.append(f"PostgreSQL history not measured: {why}")
                        continue
                    history_env["DATABASE_URL"] = cluster.url
                elif history != "sqlite":
                    raise SystemExit(f"unknown history backend {history!r}")
                runs += run_bot(history, history_env, scratch, plan, requests, standin)
        finally:
            standin.process.stop(5)
            if cluster is not None:
                cluster.close()
    text = report(runs, plan, args, notes)
    print(text)
    if not args.no_write:
        write_section(SECTION, text, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
