"""Per-sender rate limits with flask-limiter, keyed on the verified sender."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, current_app, g
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem

from bot.settings import Settings
from bot.web.twiml import render

logger = logging.getLogger(__name__)

NOTICE = "You're sending messages faster than I can answer. Please wait a minute and ask again."
# Redis calls get short timeouts: a slow limiter must not eat the reply's budget.
REDIS_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


def _sender_key() -> str:
    # Only reached after the gate in webhook.py verified the request and set g.rate_key.
    return g.rate_key


def _rate_limit() -> str:
    return current_app.extensions["bot"].settings.rate_limit


def _notice_item(breached: RateLimitItem) -> RateLimitItem:
    """One notice per window of the breached limit."""
    return type(breached)(1, breached.multiples)


def _on_breach(request_limit: RequestLimit) -> Response:
    """First breach in a window: a polite notice; later ones: an empty <Response/>."""
    services = current_app.extensions["bot"]
    services.metrics.incr("rate_limited")
    limiter: Limiter = services.limiter
    first = limiter.limiter.hit(_notice_item(request_limit.limit), "notice", g.rate_key)
    logger.info("rate limit %s reached (%s)", request_limit.limit, "notice" if first else "silent")
    text = NOTICE if first else ""
    # 200, not 429: Twilio logs any 4xx as error 11200 and drops the TwiML.
    return Response(render(text, 1), status=200, mimetype="text/xml")


def init_limits(app: Flask, settings: Settings, endpoint: str) -> Limiter:
    """A limiter for this app, limiting `endpoint` per sender (one per app keeps tests apart)."""
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS=REDIS_OPTIONS
        if settings.ratelimit_storage_uri.startswith("redis")
        else {},
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_KEY_PREFIX="whatsapp-bot",
        RATELIMIT_STRATEGY="moving-window",
    )
    limiter = Limiter(key_func=_sender_key, app=app, default_limits=[])
    view = app.view_functions[endpoint]
    app.view_functions[endpoint] = limiter.limit(_rate_limit, on_breach=_on_breach)(view)
    workers = int(os.environ.get("WEB_CONCURRENCY", "1") or 1)
    if settings.ratelimit_storage_uri.startswith("memory") and workers > 1:
        logger.warning(
            "rate limits use memory:// with %d workers: each worker counts on its own; "
            "set RATELIMIT_STORAGE_URI=redis://... to share them",
            workers,
        )
    return limiter


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
