"""Local stand-ins for Twilio's media endpoint and the CDN it redirects to: each a threaded
HTTP server on 127.0.0.1 that answers from a script and records every request it gets."""

from __future__ import annotations

import base64
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "media-test-token-0123456789abcdef"


def basic_auth(account_sid: str, auth_token: str) -> str:
    """The Authorization header Twilio's API host demands of this account."""
    return "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()


BASIC = basic_auth(ACCOUNT_SID, AUTH_TOKEN)
# A trickle that nothing cut short ends after this, so a broken client fails, not hangs.
TRICKLE_FOR = 5.0


def media_path(number: int = 0) -> str:
    """The path of a message's media, shaped as Twilio's MediaUrl{N} are."""
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{number:032x}/Media/ME{number:032x}"


@dataclass(frozen=True)
class Served:
    """One scripted response. `length` is the Content-Length claimed (the body's own by
    default; None sends none and ends the body by closing); `trickle` sends it a byte at a
    time, this many seconds apart, from the status line ("headers") or after the headers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None | str = "body"
    trickle: float = 0.0
    trickle_from: str = "body"  # or "headers"


@dataclass(frozen=True)
class Seen:
    """One request a stand-in received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        host = self.server.host
        headers = {name.lower(): value for name, value in self.headers.items()}
        host._record(Seen("GET", self.path, headers))
        self.close_connection = True  # one request per connection, like the client
        if host.require_auth and headers.get("authorization") != host.require_auth:
            self._write(Served(401, b'{"message": "Authenticate"}'))
        else:
            self._write(host._next(self.path))

    def _write(self, served: Served) -> None:
        length = len(served.body) if served.length == "body" else served.length
        head = [f"HTTP/1.1 {served.status} Scripted", "Connection: close"]
        head += [f"{name}: {value}" for name, value in served.headers.items()]
        head += [f"Content-Length: {length}"] if length is not None else []
        raw_head = ("\r\n".join(head) + "\r\n\r\n").encode()
        try:
            if not served.trickle:
                self.wfile.write(raw_head + served.body)
                return
            at_once = b"" if served.trickle_from == "headers" else raw_head
            slow = raw_head + served.body if served.trickle_from == "headers" else served.body
            self.wfile.write(at_once)
            stop = self.server.host._stop
            for index in range(len(slow)):
                self.wfile.write(slow[index : index + 1])
                if stop.wait(served.trickle) or index * served.trickle > TRICKLE_FOR:
                    return
        except OSError:  # the client gave up: what a trickle test expects
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    host: MediaHost


class MediaHost:
    """A stand-in host. `script[path]` lists its responses in order, the last repeating;
    a path not scripted gets a 404. With `require_auth`, any other Authorization gets 401.
    With `tls` (a server context) it speaks https."""

    def __init__(self, require_auth: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.require_auth = require_auth
        self.script: dict[str, list[Served]] = {}
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.host = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> MediaHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    def serve(self, path: str, *responses: Served) -> str:
        """Script `path`'s responses; returns its full URL."""
        self.script[path] = list(responses)
        return self.url(path)

    @property
    def seen(self) -> list[Seen]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._seen)

    def stop(self) -> None:
        """Wake any trickle, stop serving and close the socket."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def _next(self, path: str) -> Served:
        with self._lock:
            responses = self.script.get(path.split("?", 1)[0])
            if not responses:
                return Served(404, b'{"message": "Not Found"}')
            return responses.pop(0) if len(responses) > 1 else responses[0]


def redirect(to: str, status: int = 307) -> Served:
    """What Twilio's API answers for media: a redirect to the file's short-lived URL."""
    return Served(status, headers={"Location": to})
