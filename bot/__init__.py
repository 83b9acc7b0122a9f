"""The WhatsApp knowledge bot: create_app() builds the Flask application."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.settings import ConfigError, Settings, load_settings, with_overrides

logger = logging.getLogger(__name__)


def create_app(
    config_override: Mapping[str, Any] | Settings | None = None,
    environ: Mapping[str, str] | None = None,
) -> Flask:
    """Build the app: settings, logging, stores, answerer, blueprint and CLI."""
    from bot.answer import build_answerer, build_embedder
    from bot.chat.conversation import ConversationHandler
    from bot.history import open_history_store
    from bot.knowledge import open_knowledge_store
    from bot.logs import configure_logging
    from bot.metrics import Metrics
    from bot.ops.cli import register_cli
    from bot.web.blueprint import MAX_BODY_BYTES, WEBHOOK_ENDPOINT, bp
    from bot.web.limits import init_limits
    from bot.web.security import local_token
    from bot.web.services import Services

    if isinstance(config_override, Settings):
        settings = config_override
    else:
        settings = with_overrides(load_settings(environ), config_override or {})
    configure_logging(settings)
    for warning in settings.warnings:
        logger.warning("config: %s", warning)
    if settings.local_mode:
        logger.warning(
            "local mode: no TWILIO_AUTH_TOKEN, so signatures cannot be checked; "
            "serving loopback clients only and treating every sender as allowed"
        )

    app = Flask(__name__)
    # Werkzeug refuses larger bodies with 413 even when no Content-Length is sent.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    try:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{settings.origin('DATA_DIR')}: DATA_DIR = {settings.data_dir!r}: expected a "
            "directory the bot can "
            f"create and write ({exc.strerror or type(exc).__name__})"
        ) from None
    history = open_history_store(settings)
    embedder = build_embedder(settings.mistral_api_key or None, settings.mistral_server_url or None)
    knowledge = open_knowledge_store(settings, embedder)
    answerer = build_answerer(
        settings.mistral_api_key or None,
        settings.mistral_model,
        settings.mistral_server_url or None,
    )
    metrics = Metrics()
    handler = ConversationHandler(settings, history, knowledge, answerer, metrics)
    services = Services(settings, history, knowledge, answerer, metrics, handler, handler.access)
    if settings.local_mode:
        services.local_token = local_token(settings.data_dir)
    app.extensions["bot"] = services
    app.register_blueprint(bp)
    services.limiter = init_limits(app, settings, WEBHOOK_ENDPOINT)
    if settings.proxy_hops:
        # Trust X-Forwarded-* only from as many proxies as the operator says sit in front.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    register_cli(app)
    return app


def _http_error(exc: HTTPException) -> Response:
    """4xx/5xx as one plain line: never an HTML page or a traceback."""
    if exc.response is not None:  # a response chosen by whoever raised (the rate limiter)
        return exc.response
    return Response(f"{exc.name}\n", status=exc.code or 500, mimetype="text/plain")


def _unexpected_error(exc: Exception) -> Response:
    """A bug outside the use case: logged with its traceback, answered with empty TwiML."""
    logger.exception("unhandled error")
    # Twilio treats any 5xx as error 11200; an empty TwiML reply at least is not retried.
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?><Response />', status=200, mimetype="text/xml"
    )
