"""The Flask application around the services: routes, limits, proxies, error pages."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.web.blueprint import MAX_BODY_BYTES, webhook_blueprint
from bot.web.limits import init_limits
from bot.web.services import EXTENSION, Services
from bot.web.twiml import twiml_response

logger = logging.getLogger(__name__)


def build_web_app(services: Services) -> Flask:
    """A Flask app serving the webhook and /health on `services`."""
    settings = services.settings
    app = Flask("bot")
    # Werkzeug refuses larger bodies with 413 even when no Content-Length is sent.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions[EXTENSION] = services
    services.limiter = init_limits(app, settings)
    app.register_blueprint(webhook_blueprint(services.limiter))
    if settings.proxy_hops:
        # Trust X-Forwarded-* only from as many proxies as the operator says sit in front.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
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
    return twiml_response("", 1)
