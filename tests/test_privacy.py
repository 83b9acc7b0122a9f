"""No secret and no unmasked phone number in any log line or in /health."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.logs import LOG_FILE
from tests.support import ALICE, BOB, PUBLIC_URL, TOKEN, WEBHOOK, sign, twilio_form

MISTRAL_KEY = "mistral-secret-key-4242"
NEO4J_PASSWORD = "neo4j-secret-password"
NUMBERS = ("447700900001", "447700900002", "15555550199")


def test_a_full_conversation_logs_no_secret_and_no_number(
    make_app, signed_post, mistral, settings_for
):
    app = make_app(
        mistral_api_key=MISTRAL_KEY,
        mistral_server_url=mistral.url,
        neo4j_password=NEO4J_PASSWORD,
        allowed_senders=(ALICE, BOB),
        rate_limit="6 per minute",
        log_level="DEBUG",
    )
    client = app.test_client()
    mistral.statuses = [429]  # one failure path logs too
    for body in [
        "@agent help",
        "@agent who attended the UNEA meeting?",
        "@agent why was that decided?",
        "@agent sources",
        "no mention at all",
        "@agent reset",
        "@agent one too many",
        "@agent and another",
    ]:
        assert signed_post(client, twilio_form(body, ALICE)).status_code == 200
    signed_post(client, twilio_form("@agent let me in", "whatsapp:+15555550199"))
    forged = twilio_form("@agent forged", BOB)
    client.post(
        WEBHOOK, data=forged, headers={"X-Twilio-Signature": sign(PUBLIC_URL, forged, "bad")}
    )
    mistral.delay = 30  # and a model timeout
    signed_post(client, twilio_form("@agent what about Germany?", BOB))
    health = client.get("/health").get_data(as_text=True)

    for handler in logging.getLogger().handlers:
        handler.flush()
    log = (Path(app.extensions["bot"].settings.data_dir) / LOG_FILE).read_text()
    assert "from +44******0001" in log  # the conversation really was logged
    assert "mistral answer failed" in log
    for text in (log, health):
        for secret in (TOKEN, MISTRAL_KEY, NEO4J_PASSWORD):
            assert secret not in text
        for number in NUMBERS:
            assert number not in text
