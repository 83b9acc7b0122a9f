"""Shared fixtures: app factories, Twilio-signed requests, the Mistral stand-in. The plain
helpers and constants they use are in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot import create_app
from bot.answer.extractive import ExtractiveAnswerer
from bot.knowledge import open_knowledge_store
from bot.knowledge.ingest import ingest_paths
from bot.ops.cli import reply_texts
from bot.settings import Settings
from tests.fakes.answerers import FakeAnswerer
from tests.fakes.knowledge import FakeKnowledge
from tests.fakes.mistral_server import MistralStub
from tests.fakes.twilio_media import MediaHost
from tests.services import unavailable
from tests.services.postgres import pg_cluster_url, pg_url, postgres, postgres_cluster  # noqa: F401
from tests.support import (
    ALICE,
    APP_MEDIA_AUTH,
    PUBLIC_URL,
    QMSUM_DIR,
    SAMPLE,
    TOKEN,
    WEBHOOK,
    sign,
    twilio_form,
)

# Throwaway servers, each started only when a test asks for it.
pytest_plugins = ["tests.services.redis", "tests.services.falkordb", "tests.history.stores"]


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
    """Factory: an app with the sample knowledge ingested; closed after the test. Settings
    are keyword overrides; `answerer`, `knowledge` and `history` replace the components the
    settings would build (as create_app's own arguments do)."""
    apps: list[Flask] = []

    def build(
        ingest: bool = True, *, answerer=None, knowledge=None, history=None, **overrides
    ) -> Flask:
        settings = settings_for(**overrides)
        app = create_app(settings, answerer=answerer, knowledge=knowledge, history=history)
        app.config["TESTING"] = True
        if ingest:
            ingest_paths(app.extensions["bot"].knowledge, [str(SAMPLE)], progress=False)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["bot"].close()


@pytest.fixture
def spied_app(make_app, settings_for) -> Callable[..., Flask]:
    """Factory: make_app with spies (tests/fakes/) on the default answerer and knowledge
    store without a model key; the app's handler.answerer and handler.knowledge."""

    def build(ingest: bool = True, **overrides) -> Flask:
        knowledge = FakeKnowledge(wraps=open_knowledge_store(settings_for(**overrides)))
        answerer = FakeAnswerer(wraps=ExtractiveAnswerer())
        return make_app(ingest, answerer=answerer, knowledge=knowledge, **overrides)

    return build


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


@pytest.fixture
def twilio_api() -> Iterator[MediaHost]:
    """A stand-in of Twilio's API host for the apps' account: demands its Basic credentials
    (scripted to redirect each media URL to the `cdn`)."""
    with MediaHost(require_auth=APP_MEDIA_AUTH) as host:
        yield host


@pytest.fixture
def cdn() -> Iterator[MediaHost]:
    """The host Twilio redirects media to (another port, so another origin); asks for nothing."""
    with MediaHost() as host:
        yield host
