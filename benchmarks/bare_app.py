"""The baseline: a bare Flask app that answers the webhook with a fixed TwiML reply.

    gunicorn -c gunicorn.conf.py 'benchmarks.bare_app:create_app()'

Same server, same settings, none of the bot's work: its throughput is the ceiling the bot
is compared with. `BARE_DELAY_SECONDS` makes each reply wait, like a model call would.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response

REPLY = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Stub answer. The meeting '
    "agreed to keep the current plan.</Message></Response>"
)


def create_app() -> Flask:
    """The bare app; the delay is read once, at start."""
    delay = float(os.environ.get("BARE_DELAY_SECONDS", "0") or 0)
    app = Flask(__name__)

    @app.post("/whatsapp/webhook")
    def webhook() -> Response:
        if delay > 0:
            time.sleep(delay)
        return Response(REPLY, mimetype="text/xml")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app
