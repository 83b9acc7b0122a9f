"""The blueprint: POST /whatsapp/webhook (gate, rate limit, the use case) and GET /health."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, jsonify, request
from flask_limiter import Limiter

from bot.chat.access import rate_key, refusal_text
from bot.deadline import Deadline
from bot.logs import new_request_id
from bot.text import mask_number
from bot.web.inbound import BadRequest, parse_form
from bot.web.limits import limit_per_sender
from bot.web.security import verify_twilio_request
from bot.web.services import current
from bot.web.twiml import twiml_response

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
WEBHOOK_ENDPOINT = "webhook.whatsapp_webhook"
# Twilio's forms are a few KiB; anything much larger is not Twilio.
MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


def _twiml(text: str) -> Response:
    return twiml_response(text, current().settings.max_reply_messages)


def webhook_blueprint(limiter: Limiter) -> Blueprint:
    """The routes, the webhook behind the gate and the app's per-sender limit."""
    bp = Blueprint("webhook", __name__)
    bp.before_request(gate)
    bp.add_url_rule(
        WEBHOOK_PATH, view_func=limit_per_sender(limiter)(whatsapp_webhook), methods=["POST"]
    )
    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    return bp


def gate() -> Response | None:
    """The cheap checks, before the rate limiter counts anything (SPEC steps 1-4)."""
    if request.endpoint != WEBHOOK_ENDPOINT:
        return None
    new_request_id()
    g.started = time.perf_counter()
    services = current()
    # The budget starts when the request arrives: Twilio's 15 s clock is already running.
    g.deadline = Deadline(services.settings.response_timeout_seconds)
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _plain(413, "Request body too large")
    if request.mimetype != FORM_TYPE:
        return _plain(400, f"Expected {FORM_TYPE}")
    if not verify_twilio_request(request, services.settings, services.local_token):
        logger.warning("rejected a request with a missing or invalid Twilio signature")
        return _plain(403, "Invalid or missing Twilio signature")
    try:
        message = parse_form(request.form)
    except BadRequest as exc:
        return _plain(400, str(exc))
    # Read through the local, not `g`: every `g.` goes through a context-local proxy.
    g.message = message
    logger.info(
        "received %s from %s (%d chars, %d media)",
        message.message_sid,
        mask_number(message.sender),
        len(message.body),
        message.num_media,
    )
    if not services.access.allows(message.sender):
        logger.info("refused sender %s (not in allowed_senders)", mask_number(message.sender))
        first = services.handler.notice_due(message.sender, "refused", g.deadline)
        return _twiml(refusal_text(message.sender) if first else "")
    g.rate_key = rate_key(message.sender)
    return None


def whatsapp_webhook() -> Response:
    """Answer one verified, allowed, rate-limited message inline as TwiML."""
    reply = current().handler.handle(g.message, g.deadline)
    response = _twiml(reply.text)
    logger.info("replied (%s) in %.0f ms", reply.kind, (time.perf_counter() - g.started) * 1000)
    return response


def health() -> tuple[Response, int]:
    """Component status and counters; never a secret or a phone number."""
    report = current().health()
    return jsonify(report), 503 if report["status"] == "down" else 200
