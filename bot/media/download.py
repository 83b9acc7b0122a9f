"""Inbound media from Twilio: fetched with the account's credentials from Twilio's API host
only, followed without them to wherever Twilio redirects, capped, typed, and bounded by
the request's Deadline.

A `MediaUrl{N}` names `{base}/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/
{MediaSid}` on Twilio's API host, which answers (with HTTP Basic auth when the account
enforces it) with a redirect to a short-lived URL on a CDN or storage host. The standard
library's http.client is used, not urllib, whose redirect handler copies the Authorization
header to the next host, nor httpx2, which stays behind the Mistral adapter: here every hop
is explicit, and so is which one carries the credentials.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urljoin, urlsplit

from bot.config_values import LOOPBACK_HOSTS, media_base_url
from bot.deadline import Deadline
from bot.errors import MediaUnavailable
from bot.media.bounded import open_connection
from bot.media.kinds import MediaKind, kind_of, media_type
from bot.settings import Settings

logger = logging.getLogger(__name__)

# The short, log-safe reasons MediaUnavailable carries.
UNSUPPORTED_TYPE = "unsupported type"
REFUSED_HOST = "refused host"
REFUSED_URL = "refused url"
REFUSED_REDIRECT = "refused redirect"
TOO_MANY_REDIRECTS = "too many redirects"
TOO_LARGE = "too large"
WRONG_TYPE = "wrong type"
TIMEOUT = "timeout"
NOT_FOUND = "not found"
CONNECTION_ERROR = "connection error"

# The API host answers with one redirect to the CDN; a few more leave room for a region's
# hop, and a loop still ends quickly.
MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
# Right after a message arrives its media can answer 404 for a moment: wait this long and
# ask once more, when the budget still holds the pause and a download after it.
RETRY_PAUSE = 0.5
MIN_ATTEMPT_SECONDS = 1.0
READ_PIECE = 64 * 1024
# Only this path shape on the API host: the credentials fetch a message's media, not
# whatever else the account's API would hand over to them (message logs, recordings).
MEDIA_PATH = re.compile(r"/2010-04-01/Accounts/\w+/Messages/\w+/Media/\w+", re.ASCII)
DEFAULT_PORTS = {"https": 443, "http": 80}
USER_AGENT = "whatsapp-knowledge-bot media"


@dataclass(frozen=True)
class MediaFile:
    """One downloaded attachment whose bytes match its content type."""

    content_type: str  # without parameters: "audio/ogg"
    kind: str  # "audio" or "document"
    data: bytes = field(repr=False)


class _NotFound(Exception):
    """A 404 or 410 on some hop: the media is missing, perhaps only for a moment."""


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in; ValueError if invalid."""
    return parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


class TwilioMedia:
    """Downloads a message's media: `fetch(url, content_type, deadline) -> MediaFile`."""

    def __init__(
        self,
        base_url: str = "https://api.twilio.com",
        account_sid: str = "",
        auth_token: str = "",
        *,
        retry_pause: float = RETRY_PAUSE,
        max_bytes: Mapping[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._api = _origin(urlsplit(media_base_url(base_url)))  # ValueError if not allowed
        # A test stand-in on this machine may speak plain http, and so may its redirects.
        self._loopback = self._api[0] == "http" and self._api[1] in LOOPBACK_HOSTS
        # Without both parts the media is fetched as Twilio serves it to anyone: no header.
        pair = f"{account_sid}:{auth_token}".encode()
        self._auth = (
            "Basic " + base64.b64encode(pair).decode() if account_sid and auth_token else ""
        )
        self._retry_pause = retry_pause
        self._max_bytes = dict(max_bytes or {})  # kind -> cap, replacing the kinds' own
        self._context = ssl_context or ssl.create_default_context()

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioMedia:
        """The downloader for the configured account and API base."""
        return cls(
            settings.twilio_media_base_url,
            settings.twilio_account_sid,
            settings.twilio_auth_token,
        )

    def fetch(self, url: str, content_type: str, deadline: Deadline) -> MediaFile:
        """The media at Twilio's `url`, checked against `content_type`; MediaUnavailable with a
        short reason otherwise. Refusals (type, host, path) make no request at all."""
        url, kind = url.strip(), kind_of(content_type)
        if kind is None:
            raise MediaUnavailable(UNSUPPORTED_TYPE)
        self._check_media_url(url)
        started = time.monotonic()
        try:
            data = self._download(url, self._cap(kind), deadline)
        except _NotFound:
            # Twilio may not have stored the file yet: one more try while the budget holds.
            if deadline.remaining() < self._retry_pause + MIN_ATTEMPT_SECONDS:
                raise MediaUnavailable(NOT_FOUND) from None
            time.sleep(self._retry_pause)
            try:
                data = self._download(url, self._cap(kind), deadline)
            except _NotFound:
                raise MediaUnavailable(NOT_FOUND) from None
        if not kind.matches(data):
            raise MediaUnavailable(WRONG_TYPE)
        logger.info(
            "media fetched: %s, %d bytes in %.0f ms",
            media_type(content_type),
            len(data),
            (time.monotonic() - started) * 1000,
        )
        return MediaFile(media_type(content_type), kind.kind, data)

    def _cap(self, kind: MediaKind) -> int:
        return self._max_bytes.get(kind.kind, kind.max_bytes)

    def _check_media_url(self, url: str) -> None:
        """Only the configured API origin, only a media path, never credentials in the URL."""
        try:
            parts = urlsplit(url)
            origin = _origin(parts)
        except ValueError:
            raise MediaUnavailable(REFUSED_URL) from None
        if origin != self._api or parts.username is not None or parts.password is not None:
            raise MediaUnavailable(REFUSED_HOST)
        if not MEDIA_PATH.fullmatch(parts.path) or parts.query or parts.fragment:
            raise MediaUnavailable(REFUSED_URL)

    def _next_hop(self, current: str, location: str) -> str:
        """The redirect's target: https (plain http only behind a loopback stand-in)."""
        target = urljoin(current, location.strip())
        try:
            parts = urlsplit(target)
            scheme, host, _ = _origin(parts)
        except ValueError:
            raise MediaUnavailable(REFUSED_REDIRECT) from None
        plain_ok = self._loopback and scheme == "http" and host in LOOPBACK_HOSTS
        refused = not host or not target.isascii() or parts.username is not None
        if refused or not (scheme == "https" or plain_ok):
            raise MediaUnavailable(REFUSED_REDIRECT)
        return target

    def _download(self, url: str, cap: int, deadline: Deadline) -> bytes:
        """Follow the redirects and read the body; raise _NotFound on a 404 or 410."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                status, location, data = self._get(url, cap, deadline)
            except TimeoutError:  # a socket timeout, or the deadline spent between reads
                raise MediaUnavailable(TIMEOUT) from None
            # ValueError: a host name IDNA cannot encode ("a..b"), from the DNS lookup.
            except (OSError, ValueError, http.client.HTTPException):
                raise MediaUnavailable(CONNECTION_ERROR) from None
            if status in REDIRECTS and location:
                url = self._next_hop(url, location)
                continue
            if status in (404, 410):
                raise _NotFound()
            if status != 200:
                raise MediaUnavailable(f"http {status}")
            return data
        raise MediaUnavailable(TOO_MANY_REDIRECTS)

    def _get(self, url: str, cap: int, deadline: Deadline) -> tuple[int, str, bytes]:
        """One GET: (status, Location, body of a 200). Credentials go to the API origin only."""
        parts = urlsplit(url)
        scheme, host, port = _origin(parts)
        headers = {"User-Agent": USER_AGENT}
        if self._auth and (scheme, host, port) == self._api:
            headers["Authorization"] = self._auth
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = open_connection(scheme, host, port, deadline, self._context)
        try:
            connection.request("GET", path or "/", headers=headers)
            with connection.getresponse() as response:
                if response.status != 200:
                    return response.status, response.getheader("Location") or "", b""
                if response.length is not None and response.length > cap:
                    raise MediaUnavailable(TOO_LARGE)  # said up front: nothing is read
                return 200, "", _read_capped(response, cap)
        finally:
            connection.close()


def _read_capped(response: http.client.HTTPResponse, cap: int) -> bytes:
    """The body, refused as soon as it grows past `cap` (a missing or lying length)."""
    pieces: list[bytes] = []
    size = 0
    while piece := response.read1(READ_PIECE):
        size += len(piece)
        if size > cap:
            raise MediaUnavailable(TOO_LARGE)
        pieces.append(piece)
    return b"".join(pieces)
