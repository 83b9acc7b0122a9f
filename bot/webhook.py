"""The blueprint: POST /whatsapp/webhook and GET /health."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from bot.deadline import Deadline
from bot.inbound import BadRequest, parse_form
from bot.security import verify_twilio_request
from bot.twiml import render

logger = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

# Twilio's forms are a few KiB; anything much larger is not Twilio.
MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


@bp.post("/whatsapp/webhook")
def whatsapp_webhook() -> Response:
    """Verify, parse and answer one Twilio message inline as TwiML."""
    # The budget starts when the request arrives: Twilio's 15 s clock is already running.
    services = current_app.extensions["bot"]
    deadline = Deadline(services.settings.response_timeout_seconds)
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _plain(413, "Request body too large")
    if request.mimetype != FORM_TYPE:
        return _plain(400, f"Expected {FORM_TYPE}")
    if not verify_twilio_request(request, services.settings):
        logger.warning("rejected a request with a missing or invalid Twilio signature")
        return _plain(403, "Invalid or missing Twilio signature")
    try:
        message = parse_form(request.form)
    except BadRequest as exc:
        return _plain(400, str(exc))
    reply = services.handler.handle(message, deadline)
    xml = render(reply.text, services.settings.max_reply_messages)
    return Response(xml, status=200, mimetype="text/xml")


@bp.get("/health")
def health() -> tuple[Response, int]:
    """Component status and counters; never a secret or a phone number."""
    report = current_app.extensions["bot"].health()
    return jsonify(report), 503 if report["status"] == "down" else 200
