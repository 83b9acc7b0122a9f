"""Component probes for /health: backend, whether it answers, and how fast."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from flask import current_app
from flask_limiter import Limiter

from bot.answer.base import Answerer
from bot.chat.access import AccessPolicy
from bot.chat.conversation import ConversationHandler
from bot.history.store import HistoryStore
from bot.knowledge.store import KnowledgeStore
from bot.metrics import Metrics
from bot.ocr import Ocr
from bot.settings import Settings
from bot.transcription import Transcriber

VERSION = "0.1.0"
EXTENSION = "bot"  # the key of app.extensions that holds the Services


def current() -> Services:
    """The running app's services (set by the factory): the one typed way to reach them."""
    return cast(Services, current_app.extensions[EXTENSION])


def probe(backend: str, check: Callable[[], None]) -> dict:
    """Run one liveness check; report its latency and a log-safe error class on failure."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # a probe reports any failure, it never raises
        return {"backend": backend, "ok": False, "error": type(exc).__name__}
    return {
        "backend": backend,
        "ok": True,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def storage_health(limiter: Limiter, settings: Settings) -> dict:
    """The rate-limit storage component of /health."""
    started = time.perf_counter()
    try:
        ok = bool(limiter.storage.check())
    except Exception:  # a probe reports any failure, it never raises
        ok = False
    report = {
        "backend": settings.ratelimit_storage_uri.split(":", 1)[0],
        "ok": ok,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if not ok:
        report["fallback"] = "memory (per process)"
    return report


@dataclass
class Services:
    """What one app instance runs on, built once by create_app."""

    settings: Settings
    history: HistoryStore
    knowledge: KnowledgeStore
    answerer: Answerer
    metrics: Metrics
    handler: ConversationHandler
    access: AccessPolicy
    limiter: Limiter | None = None  # set once the webhook view is registered
    local_token: str = ""  # local mode's secret (bot/web/security.py); "" with a Twilio token
    ocr: Ocr | None = None  # with a model key: `ingest` reads scanned PDFs with it
    transcriber: Transcriber | None = None  # with a model key: voice notes are transcribed
    started_at: float = field(default_factory=time.time)

    def health(self) -> dict:
        """The /health document (see SPEC.md)."""
        components = {
            "history": probe(self.history.backend, self.history.ping),
            "knowledge": probe(self.knowledge.backend, self.knowledge.ping),
            # The model is not called per probe (it costs money); its failures show in
            # the fallbacks counter.
            "llm": {"backend": self.answerer.name, "ok": True},
        }
        if self.limiter is not None:
            components["rate_limit"] = storage_health(self.limiter, self.settings)
        status = "ok" if all(c["ok"] for c in components.values()) else "degraded"
        return {
            "status": status,
            "version": VERSION,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "components": components,
            # Counters live in each gunicorn worker's memory: say whose these are. The
            # service-wide numbers are in the history store (`flask --app app stats`).
            "counters_scope": "worker process",
            "pid": os.getpid(),
            **self.metrics.snapshot(),
        }

    def after_fork(self) -> None:
        """Forget clients inherited from gunicorn's master (only with --preload)."""
        for part in (self.history, self.knowledge, self.answerer, self.ocr, self.transcriber):
            reset = getattr(part, "after_fork", None)
            if reset is not None:
                reset()

    def close(self) -> None:
        """Release every store's connections."""
        self.history.close()
        self.knowledge.close()
        for part in (self.answerer, self.ocr, self.transcriber):
            close = getattr(part, "close", None)
            if close is not None:
                close()
