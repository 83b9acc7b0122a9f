"""Per-sender rate limits with flask-limiter, keyed on the verified sender."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from flask import Flask, Response, g
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem

from bot.settings import Settings
from bot.texts import RATE_LIMIT_NOTICE
from bot.web.services import current
from bot.web.twiml import twiml_response

logger = logging.getLogger(__name__)

# Redis calls get short timeouts: a slow limiter must not eat the reply's budget.
REDIS_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


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
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS=REDIS_OPTIONS
        if settings.ratelimit_storage_uri.startswith("redis")
        else {},
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_KEY_PREFIX="whatsapp-bot",
        RATELIMIT_STRATEGY="moving-window",
    )
    return Limiter(key_func=_sender_key, app=app, default_limits=[])
