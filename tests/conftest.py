"""Shared fixtures: app factories, Twilio-signed requests, the Mistral stand-in."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from bot import create_app
from bot.knowledge.ingest import ingest_paths
from bot.ops.cli import reply_texts
from bot.settings import Settings
from tests.fakes.mistral_server import MistralStub
from tests.knowledge.paths import QMSUM_DIR
from tests.services import unavailable
from tests.services.postgres import pg_cluster_url, pg_url, postgres, postgres_cluster  # noqa: F401

# Throwaway servers, each started only when a test asks for it.
pytest_plugins = ["tests.services.redis", "tests.services.falkordb", "tests.history.stores"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "knowledge" / "sample"
TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://bot.example.com"
WEBHOOK = "/whatsapp/webhook"
ALICE = "whatsapp:+447700900001"
BOB = "whatsapp:+447700900002"

_sids = itertools.count(1)


def new_sid() -> str:
    """A fresh, Twilio-shaped MessageSid."""
    return f"SM{next(_sids):032x}"


def twilio_form(body: str, sender: str = ALICE, **extra: str) -> dict[str, str]:
    """An inbound WhatsApp webhook form as Twilio sends it."""
    sid = extra.pop("MessageSid", None) or new_sid()
    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Tester",
        "WaId": sender.rpartition("+")[2],
    }
    form.update(extra)
    return form


def sign(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it."""
    return RequestValidator(token).compute_signature(url, form)


@pytest.fixture
def qmsum_dir() -> Path:
    """The shared QMSum dataset: its tests skip without it (a user's clone) and fail under
    REQUIRE_SERVICES=1 (CI), saying where it was looked for."""
    if not any(QMSUM_DIR.glob("*.json")):
        unavailable(f"QMSum dataset not found at {QMSUM_DIR} (only in the shared workspace)")
    return QMSUM_DIR


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a temporary data dir, signatures on, with field overrides."""

    def build(**overrides) -> Settings:
        values = {
            "data_dir": str(tmp_path / "data"),
            "twilio_auth_token": TOKEN,
            "public_base_url": PUBLIC_URL,
            "response_timeout_seconds": 5.0,
            "log_level": "INFO",
            "allowed_senders": ("*",),
            # Tests send many messages per sender; the rate-limit tests set their own.
            "rate_limit": "10000 per minute",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def make_app(settings_for) -> Iterator[Callable[..., Flask]]:
    """Factory: an app with the sample knowledge ingested; closed after the test."""
    apps: list[Flask] = []

    def build(ingest: bool = True, **overrides) -> Flask:
        app = create_app(settings_for(**overrides))
        app.config["TESTING"] = True
        if ingest:
            ingest_paths(app.extensions["bot"].knowledge, [str(SAMPLE)], progress=False)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["bot"].close()


@pytest.fixture
def app(make_app) -> Flask:
    """The default app: signed requests via PUBLIC_BASE_URL, extractive answers."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def signed_post() -> Callable:
    """POST a form to the webhook signed for `url` (default: the public URL Twilio calls)."""

    def post(client: FlaskClient, form: dict[str, str], url: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        signed_for = url or PUBLIC_URL + WEBHOOK
        headers.setdefault("X-Twilio-Signature", sign(signed_for, form))
        return client.post(
            WEBHOOK,
            data=urlencode(form),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
            **kwargs,
        )

    return post


@pytest.fixture
def ask(client: FlaskClient, signed_post) -> Callable[..., list[str]]:
    """Send a signed message and return the reply's <Message> texts (asserting 200)."""

    def send(body: str, sender: str = ALICE, **extra: str) -> list[str]:
        response = signed_post(client, twilio_form(body, sender, **extra))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return reply_texts(response.get_data(as_text=True))

    return send


@pytest.fixture
def mistral() -> Iterator[MistralStub]:
    """A local HTTP server speaking Mistral's API, driven through the real SDK."""
    with MistralStub() as stub:
        yield stub
