"""Per-sender rate limits with flask-limiter, keyed on the verified sender."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import cast

from flask import Flask, Response, g
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem
from limits.storage import MemoryStorage

from bot.settings import Settings
from bot.texts import RATE_LIMIT_NOTICE
from bot.web.services import current
from bot.web.twiml import twiml_response

logger = logging.getLogger(__name__)

# Redis calls get short timeouts: a slow limiter must not eat the reply's budget.
REDIS_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
# How often the in-memory storage drops expired entries (memory only: every hit checks its
# window against the clock, whatever is still stored).
SWEEP_SECONDS = 30.0
SWEPT_MEMORY = "whatsapp-bot-memory"  # the scheme of SweptMemoryStorage below


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage (what memory:// means), its expired entries dropped by one
    long-lived thread once a second.

    Upstream's storage starts a new threading.Timer on a hit whenever the last one has
    fired, 10 ms later, and each timer walks every key: under steady traffic that is a
    thread started per request (about a millisecond of the request's time on a busy
    machine) and a walk of every sender's windows a hundred times a second, which with
    "200 per day" grows with every sender seen that day. Only the scheduling is replaced;
    counting and the sweep itself are upstream's. Should an upgrade rename the private
    hooks, the override is never called and upstream's timer runs as before.
    """

    STORAGE_SCHEME = [SWEPT_MEMORY]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self._sweeper: threading.Thread | None = None
        self._sweeper_lock = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (upstream's private hook)
        """Called by every hit: make sure the sweeper runs (after a fork it does not)."""
        sweeper = self._sweeper
        if sweeper is not None and sweeper.is_alive():
            return
        with self._sweeper_lock:
            if self._sweeper is None or not self._sweeper.is_alive():
                self._sweeper = threading.Thread(
                    target=_sweep, args=(weakref.ref(self),), name="rate-limit-sweeper", daemon=True
                )
                self._sweeper.start()

    def sweep(self) -> bool:
        """Drop expired entries now; False once nothing is left to expire."""
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        return bool(self.expirations) or any(self.events.values())


def _sweep(storage_ref: weakref.ref[SweptMemoryStorage]) -> None:
    """The sweeper thread: every SWEEP_SECONDS while entries remain (a later hit starts a
    new one), and never past its storage's life (it holds only a weak reference)."""
    while True:
        time.sleep(SWEEP_SECONDS)
        storage = storage_ref()
        if storage is None:
            return
        with storage._sweeper_lock:
            if not storage.sweep():
                storage._sweeper = None
                return
        del storage


def storage_uri(configured: str) -> str:
    """The URI flask-limiter is given: memory:// becomes SweptMemoryStorage's."""
    return f"{SWEPT_MEMORY}://" if configured.startswith("memory:") else configured


def _sender_key() -> str:
    # Only reached after the gate in webhook.py verified the request and set g.rate_key.
    return g.rate_key


def _rate_limit() -> str:
    return current().settings.rate_limit


def _notice_item(breached: RateLimitItem) -> RateLimitItem:
    """One notice per window of the breached limit."""
    return type(breached)(1, breached.multiples)


def _on_breach(request_limit: RequestLimit) -> Response:
    """First breach in a window: a polite notice; later ones: an empty <Response/>."""
    services = current()
    services.metrics.incr("rate_limited")
    limiter = cast(Limiter, services.limiter)
    first = limiter.limiter.hit(_notice_item(request_limit.limit), "notice", g.rate_key)
    logger.info("rate limit %s reached (%s)", request_limit.limit, "notice" if first else "silent")
    # 200, not 429: Twilio logs any 4xx as error 11200 and drops the TwiML.
    return twiml_response(RATE_LIMIT_NOTICE if first else "", 1)


def limit_per_sender(limiter: Limiter) -> Callable[[Callable], Callable]:
    """The decorator that limits a view per verified sender (whatsapp.rate_limit)."""
    return limiter.limit(_rate_limit, on_breach=_on_breach)


def init_limits(app: Flask, settings: Settings) -> Limiter:
    """A limiter for this app (one per app keeps apps with other storage apart)."""
    app.config.update(
        RATELIMIT_STORAGE_URI=storage_uri(settings.ratelimit_storage_uri),
        RATELIMIT_STORAGE_OPTIONS=REDIS_OPTIONS
        if settings.ratelimit_storage_uri.startswith("redis")
        else {},
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_KEY_PREFIX="whatsapp-bot",
        RATELIMIT_STRATEGY="moving-window",
    )
    return Limiter(key_func=_sender_key, app=app, default_limits=[])
