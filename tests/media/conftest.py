"""Fixtures: Twilio's media endpoint and its CDN as two local stand-ins, and the adapter
pointed at the first with the account's credentials."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.media import TwilioMedia
from tests.fakes.twilio_media import ACCOUNT_SID, AUTH_TOKEN, BASIC, MediaHost

# Short enough for fast tests, long enough to tell a retry from none.
RETRY_PAUSE = 0.05


@pytest.fixture
def api() -> Iterator[MediaHost]:
    """Twilio's API host for the fakes' account: demands its Basic credentials (`cdn`, the
    host it redirects to, is tests/conftest.py's)."""
    with MediaHost(require_auth=BASIC) as host:
        yield host


@pytest.fixture
def media(api: MediaHost) -> TwilioMedia:
    return TwilioMedia(api.base_url, ACCOUNT_SID, AUTH_TOKEN, retry_pause=RETRY_PAUSE)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> Path:
    """A throwaway self-signed certificate (and its key) for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the https stand-ins")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def tls_pair(certificate: Path) -> Iterator[tuple[MediaHost, MediaHost]]:
    """The API and CDN stand-ins over https, with the same certificate."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    hosts = MediaHost(require_auth=BASIC, tls=server), MediaHost(tls=server)
    yield hosts
    for host in hosts:
        host.stop()


@pytest.fixture
def trusting(certificate: Path) -> ssl.SSLContext:
    """A client context that trusts the stand-ins' certificate, verification on."""
    return ssl.create_default_context(cafile=str(certificate / "cert.pem"))
