"""`flask --app app check`: configuration, dependencies and connectivity, one line each."""

from __future__ import annotations

import importlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.deadline import Deadline
from bot.knowledge.catalog import SAMPLE_FOLDER, bundled_sample
from bot.settings import shared_limits_warning
from bot.web.blueprint import WEBHOOK_PATH
from bot.web.services import Services, storage_health

PROBE_SECONDS = 5.0
_SID_RE = re.compile(r"^AC[0-9a-f]{32}$")
_TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: str  # "ok", "warning" or "error"
    text: str

    def line(self) -> str:
        return f"{self.level.upper():<7} {self.text}"


def _timed(name: str, probe: Callable[[], str | None]) -> Finding:
    """Run a connectivity probe; its latency goes in the line, its failure becomes an error."""
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:  # a check reports, it never crashes
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return Finding("error", f"{name}: not reachable ({reason})")
    ms = (time.perf_counter() - started) * 1000
    return Finding("ok", f"{name}: answers in {ms:.0f} ms" + (f"; {detail}" if detail else ""))


def _dependencies(services: Services) -> Iterator[Finding]:
    settings = services.settings
    needed = {
        "flask": True,
        "twilio": True,
        "flask_limiter": True,
        "dotenv": True,
        "psycopg2": bool(settings.database_url),
        "neo4j": bool(settings.neo4j_uri),
        "mistralai": bool(settings.mistral_api_key),
        "redis": settings.ratelimit_storage_uri.startswith("redis"),
    }
    missing = []
    for module, required in needed.items():
        if not required:
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        yield Finding(
            "error",
            f"dependencies: cannot import {', '.join(missing)}; "
            "run pip install -r requirements.txt",
        )
    else:
        yield Finding("ok", "dependencies: all importable")


def _twilio(services: Services) -> Iterator[Finding]:
    settings = services.settings
    sid, token, base = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.public_base_url,
    )
    if sid and not _SID_RE.match(sid):
        yield Finding("error", "TWILIO_ACCOUNT_SID: should be AC followed by 32 hex characters")
    if not token:
        yield Finding(
            "warning",
            "TWILIO_AUTH_TOKEN is not set: local mode, loopback clients "
            "only, no signature check; Twilio cannot reach the bot",
        )
        return
    if not _TOKEN_RE.match(token):
        yield Finding(
            "error",
            "TWILIO_AUTH_TOKEN: should be 32 hex characters (Twilio console > Account info)",
        )
    if not settings.validate_signature:
        yield Finding(
            "warning",
            "twilio.validate_signature is false: anyone can post to the "
            "webhook; use only for debugging",
        )
    if not base:
        if not settings.proxy_hops:
            yield Finding(
                "warning",
                "PUBLIC_BASE_URL is not set: behind ngrok or Render "
                "the signature check will fail (403)",
            )
        return
    parts = urlsplit(base)
    if parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        yield Finding(
            "error",
            f"PUBLIC_BASE_URL must not include {WEBHOOK_PATH}: "
            f"set it to {base[: -len(WEBHOOK_PATH)] or base}",
        )
        return
    if parts.scheme != "https":
        # Twilio calls http webhooks too; it is the signature URL that must match exactly.
        yield Finding(
            "warning",
            f"PUBLIC_BASE_URL {base} is not https: Twilio's requests (and their replies) "
            "cross the network unencrypted; use the https URL if there is one",
        )
    yield Finding("ok", f"Twilio webhook URL to configure: {base}{WEBHOOK_PATH} (HTTP POST)")


def _access(services: Services) -> Iterator[Finding]:
    settings = services.settings
    if settings.local_mode:
        return
    if "*" in settings.allowed_senders:
        yield Finding(
            "warning",
            'whatsapp.allowed_senders is ["*"]: anyone who finds the '
            "number can read your knowledge base",
        )
    elif not settings.allowed_senders and not settings.admin_senders:
        yield Finding("warning", "whatsapp.allowed_senders is empty: nobody gets answers")


def _limits_and_budget(services: Services) -> Iterator[Finding]:
    settings = services.settings
    if warning := shared_limits_warning(settings):
        yield Finding("warning", warning)
    if settings.response_timeout_seconds >= 13:
        yield Finding(
            "warning",
            f"whatsapp.response_timeout_seconds = "
            f"{settings.response_timeout_seconds:g} leaves little margin "
            "before Twilio's 15 s limit; 10-12 is safer",
        )


def _services(services: Services) -> Iterator[Finding]:
    history, knowledge = services.history, services.knowledge

    def knowledge_probe() -> str:
        knowledge.ping()
        counts = knowledge.counts()
        return f"{counts.get('documents', 0)} documents, {counts.get('chunks', 0)} chunks"

    yield _timed(f"history ({history.backend})", lambda: history.ping())
    found = _timed(f"knowledge ({knowledge.backend})", knowledge_probe)
    yield found
    if found.level == "ok" and " 0 documents" in found.text:
        yield Finding("warning", "the knowledge base is empty: run flask --app app ingest PATH")
    elif found.level == "ok":
        yield from _sample_beside_own(services)
        yield from _collections(services)
        yield from _vectors(services)
    if found.level == "ok":
        yield from _graph(services)
    if services.limiter is not None:
        report = storage_health(services.limiter, services.settings)
        level = "ok" if report["ok"] else "error"
        state = "answers" if report["ok"] else "not reachable (falls back to per-process memory)"
        yield Finding(level, f"rate-limit storage ({report['backend']}): {state}")
    ping = getattr(services.answerer, "ping", None)
    if ping is None:
        yield Finding("ok", "llm: extractive answers (no MISTRAL_API_KEY)")
    else:
        model = services.settings.mistral_model
        yield _timed(f"llm (mistral, {model})", lambda: ping(Deadline(PROBE_SECONDS)))


def _sample_beside_own(services: Services) -> Iterator[Finding]:
    """The bundled, fictional sample next to the team's own documents would be answered
    from as if it were true."""
    try:
        documents = services.knowledge.documents()
    except Exception:  # a check reports, it never crashes; the probe above said it answers
        return
    sample = bundled_sample(documents)
    if sample and len(sample) < len(documents):
        yield Finding(
            "warning",
            f"the knowledge base holds {len(sample)} documents of the fictional bundled sample "
            f"next to {len(documents) - len(sample)} of your own, and answers from both: "
            f"remove them with flask --app app remove {SAMPLE_FOLDER}/",
        )


def _collections(services: Services) -> Iterator[Finding]:
    """With collections configured: one that holds no document (a misspelt name, or one
    nothing was ingested into yet), and stored ones nobody may read (answered to no one)."""
    readers = services.settings.readers
    if not readers.configured:
        return
    try:
        stored = Counter(d.collection for d in services.knowledge.documents())
    except Exception:  # a check reports, it never crashes; the probe above said it answers
        return
    for name in readers.names:
        if name not in stored:
            yield Finding(
                "warning",
                f"collection {name} of knowledge.collections holds no document: flask --app "
                f"app ingest --collection {name} PATH (or move) puts documents there",
            )
    read = {name for name, senders in readers.grants if senders}
    for name, count in sorted(stored.items()):
        if name not in read:
            why = "it is not in" if name not in readers.names else "nobody is listed for it in"
            yield Finding(
                "warning",
                f"{count} document(s) in collection {name}, which nobody may read ({why} "
                f"knowledge.collections): add it there, or flask --app app move --collection "
                f"NAME '#{name}'",
            )


def _vectors(services: Services) -> Iterator[Finding]:
    """The SQLite store's vectors against the configured embedding model: another model's
    are never compared with a question's, so retrieval is full-text only until rebuilt."""
    vectors = getattr(services.knowledge, "vectors", None)  # SQLite with an embedder only
    if vectors is None:
        return
    try:
        status = vectors.status()
    except Exception:  # a check reports, it never crashes; the probe above said it answers
        return
    rebuild = "run flask --app app ingest --reembed"
    if status.stored not in (None, status.configured):
        yield Finding(
            "warning",
            f"knowledge vectors are {status.stored} but the embedding model is "
            f"{status.configured}: questions are searched by full text only; {rebuild}",
        )
    elif status.with_vectors < status.chunks:
        yield Finding(
            "warning",
            f"knowledge vectors: {status.chunks - status.with_vectors} of {status.chunks} "
            f"chunks have no {status.configured} vector (found by full text only); {rebuild}",
        )
    else:
        yield Finding("ok", f"knowledge vectors: {status.configured} for all chunks (hybrid)")


def _graph(services: Services) -> Iterator[Finding]:
    """The graph store's own lines: its server's version against the dialect's floor, the
    indexes (created here when missing) and the vector index's dimensions."""
    diagnose = getattr(services.knowledge, "diagnose", None)  # the graph store only
    if diagnose is None:
        return
    try:
        lines = diagnose()
    except Exception as exc:  # a check reports, it never crashes
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        yield Finding("error", f"graph indexes: cannot be read ({reason})")
        return
    for level, text in lines:
        yield Finding(level, text)


def run_checks(services: Services) -> list[Finding]:
    """Every finding, config warnings first; any 'error' means the bot will misbehave."""
    findings = [Finding("warning", f"config: {w}") for w in services.settings.warnings]
    if not services.settings.warnings:
        path = services.settings.config_path
        state = "is valid" if Path(path).is_file() else "not found: built-in defaults"
        findings.append(Finding("ok", f"config: {path} {state}"))
    for group in (_dependencies, _twilio, _access, _limits_and_budget, _services):
        findings.extend(group(services))
    return findings
