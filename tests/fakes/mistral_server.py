"""A local stand-in for Mistral's HTTP API, so tests exercise the real SDK over a socket."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import itertools
import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMBEDDING_DIMENSIONS = 1024
MODELS = ("mistral-small-latest", "mistral-embed")
# How a 200 can be sent slowly: the status line and headers trickled, the body trickled
# after the headers sent at once, or a chunked body that keeps coming quickly and never ends.
TRICKLE_MODES = ("headers", "body", "endless")
ENDLESS_INTERVAL = 0.02  # data always arrives well inside any per-read timeout


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received."""

    method: str
    path: str
    json: Any
    authorization: str
    headers: dict[str, str] = field(default_factory=dict)
    port: int = 0  # the client's port: a new one means a new connection
    # A multipart body (audio transcription): each field's values, and each file sent.
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """One file of a multipart request."""

    file_name: str
    content_type: str
    data: bytes = field(repr=False)


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, list[str]], dict]:
    """(fields, files) of a multipart/form-data body; ({}, {}) for anything else."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}, {}
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, list[str]] = {}
    files: dict[str, Upload] = {}
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition") or "")
        data = part.get_payload(decode=True) or b""
        file_name = part.get_filename()
        if file_name is not None:
            files[name] = Upload(file_name, part.get_content_type(), data)
        else:
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return fields, files


def embed(text: str) -> list[float]:
    """A deterministic unit vector; texts sharing words get similar vectors (feature hashing)."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    words = re.findall(r"\w+", text.lower()) or [text]
    for word in words:
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % EMBEDDING_DIMENSIONS
        vector[index] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            return str(content or "")
    return ""


def default_reply(body: dict) -> str:
    """An answer derived from the question (the last line of the last user message)."""
    text = _last_user_text(body).strip()
    question = text.rsplit("Question:", 1)[-1].strip() if text else ""
    return f"Stub answer to: {question or 'nothing'}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API, so pooling is exercised
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.stub._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.stub._track(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        stub = self.server.stub
        raw = self._read_body() if method == "POST" else b""
        form, files = parse_multipart(self.headers.get("Content-Type", ""), raw)
        body = None if form or files else self._json(raw)
        auth = self.headers.get("Authorization", "")
        headers, port = dict(self.headers.items()), self.client_address[1]
        stub._record(RecordedRequest(method, self.path, body, auth, headers, port, form, files))
        status, delay, wake = stub._next()
        if delay > 0 and wake.wait(delay):
            # Woken by stop() or reset(): drop the request like a vanished server would.
            self.close_connection = True
            return
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            self._send(401, {"message": "Unauthorized", "request_id": uuid.uuid4().hex})
            return
        if status != 200:
            self._send(status, _error(status), stub._error_headers(status, self.path))
            return
        route = (method, self.path.split("?", 1)[0].rstrip("/"))
        if route == ("POST", "/v1/chat/completions") and isinstance(body, dict):
            payload = stub._chat(body)
        elif route == ("POST", "/v1/embeddings") and isinstance(body, dict):
            payload = _embeddings(body)
        elif route == ("POST", "/v1/ocr") and isinstance(body, dict):
            payload = stub._ocr(body)
        elif route == ("POST", "/v1/audio/transcriptions") and "file" in files:
            payload = stub._transcription(form, files["file"])
        elif route == ("GET", "/v1/models"):
            payload = _models()
        else:
            self._send(404, {"detail": "Not Found"})
            return
        if stub.trickle is None:
            self._send(200, payload)
        else:
            self._trickle(payload, wake)

    def _trickle(self, payload: Any, wake: threading.Event) -> None:
        """Send a 200 slowly as `stub.trickle` says; give up after `stub.trickle_for` s."""
        stub = self.server.stub
        mode, size, interval = stub.trickle, stub.trickle_bytes, stub.trickle_interval
        data = json.dumps(payload).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if mode == "endless":
            at_once = head + b"Transfer-Encoding: chunked\r\n\r\n"
            piece = f"{size:x}\r\n".encode() + b" " * size + b"\r\n"
            pieces = itertools.repeat(piece)  # JSON whitespace, forever
            interval = ENDLESS_INTERVAL
        else:
            head += f"Content-Length: {len(data)}\r\n\r\n".encode()
            at_once, slow = (b"", head + data) if mode == "headers" else (head, data)
            pieces = (slow[i : i + size] for i in range(0, len(slow), size))
        # Whatever happens the connection is not reusable: the client may have read half.
        self.close_connection = True
        until = time.monotonic() + stub.trickle_for
        try:
            self.wfile.write(at_once)
            for piece in pieces:
                self.wfile.write(piece)
                # Woken by stop() or reset(); or sent for long enough: drop the connection,
                # so a client without an overall deadline fails a test instead of hanging it.
                if wake.wait(interval) or time.monotonic() > until:
                    return
        except OSError:  # the client gave up and closed the connection
            stub._gave_up(self.client_address[1])


def _error(status: int) -> dict:
    if status == 429:
        return {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited"}
    if status == 422:
        return {"detail": [{"loc": ["body"], "msg": "invalid request", "type": "value_error"}]}
    return {"object": "error", "message": "Service unavailable", "type": "internal_error"}


def _embeddings(body: dict) -> dict:
    inputs = body.get("inputs", body.get("input", []))
    texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
    tokens = sum(len(t.split()) for t in texts)
    return {
        "id": uuid.uuid4().hex,
        "object": "list",
        "model": body.get("model", "mistral-embed"),
        "data": [
            {"object": "embedding", "embedding": embed(t), "index": i} for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }


def _document_bytes(document: Any) -> bytes:
    """The bytes of an OCR request's `data:...;base64,` document URL (b"" for another kind)."""
    url = document.get("document_url", "") if isinstance(document, dict) else ""
    _, _, encoded = str(url).partition(";base64,")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _models() -> dict:
    cards = []
    for model in MODELS:
        chat = model != "mistral-embed"
        cards.append(
            {
                "id": model,
                "object": "model",
                "created": 1_700_000_000,
                "owned_by": "mistralai",
                "type": "base",
                "max_context_length": 32768,
                "capabilities": {"completion_chat": chat, "function_calling": chat},
            }
        )
    return {"object": "list", "data": cards}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: MistralStub


class MistralStub:
    """Speaks /v1/chat/completions, /v1/embeddings, /v1/ocr, /v1/audio/transcriptions and
    /v1/models on 127.0.0.1."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Forget recorded requests and restore default behaviour; wakes hanging requests."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self.reply: str | Callable[[dict], str] | None = None
            self.delay = 0.0
            self.statuses: list[int] = []
            self.retry_after: float | None = None
            self.usage = (50, 20)
            self.trickle: str | None = None  # one of TRICKLE_MODES, or None: sent at once
            self.trickle_bytes = 16
            self.trickle_interval = 0.9
            self.trickle_for = 10.0
            self.abandoned: list[int] = []  # client ports that closed mid-trickle
            # /v1/ocr: each page's Markdown, or a function of the PDF's bytes giving them;
            # None: "Page N" text for each page object of the PDF sent.
            self.ocr_pages: list[str] | Callable[[bytes], list[str]] | None = None
            # /v1/audio/transcriptions: the text heard, or a function of the audio's bytes
            # giving it; None: "Stub transcript of N bytes".
            self.transcript: str | Callable[[bytes], str] | None = None
            self.transcript_language: str | None = "en"
            old, self._wake = getattr(self, "_wake", None), threading.Event()
        if old is not None:
            old.set()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict]:
        """The JSON bodies of the chat-completion requests received."""
        return [r.json for r in self.requests if r.path.startswith("/v1/chat/completions")]

    @property
    def ocr_requests(self) -> list[dict]:
        """The JSON bodies of the OCR requests received."""
        return [r.json for r in self.requests if r.path.startswith("/v1/ocr")]

    @property
    def transcription_requests(self) -> list[RecordedRequest]:
        """The audio transcription requests received (their `form` and `files`)."""
        return [r for r in self.requests if r.path.startswith("/v1/audio/transcriptions")]

    def start(self) -> MistralStub:
        """Listen on a free port in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop quickly, even with requests hanging or keep-alive connections open."""
        if self._server is None:
            return
        self._wake.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock handler threads waiting on idle keep-alives
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections:
                    break
            time.sleep(0.01)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._server = self._thread = None

    def __enter__(self) -> MistralStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler ------------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _gave_up(self, port: int) -> None:
        with self._lock:
            self.abandoned.append(port)

    def _next(self) -> tuple[int, float, threading.Event]:
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else 200
            return status, self.delay, self._wake

    def _error_headers(self, status: int, path: str) -> dict[str, str]:
        if status in (307, 308):  # to the same path: the redirected request succeeds
            return {"Location": path}
        if status in (429, 503) and self.retry_after is not None:
            return {"Retry-After": f"{self.retry_after:g}"}
        return {}

    def _ocr(self, body: dict) -> dict:
        """An OCR response: one Markdown page per `ocr_pages` item, or per page of the PDF."""
        data = _document_bytes(body.get("document"))
        pages = self.ocr_pages
        if callable(pages):
            pages = pages(data)
        if pages is None:
            count = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
            pages = [
                f"# Scanned page {n}\n\nPage {n} as the stand-in read it."
                for n in range(1, count + 1)
            ]
        return {
            "pages": [
                {
                    "index": i,
                    "markdown": markdown,
                    "images": [],
                    "dimensions": {"dpi": 200, "height": 2200, "width": 1700},
                }
                for i, markdown in enumerate(pages)
            ],
            "model": body.get("model", "mistral-ocr-latest"),
            "usage_info": {"pages_processed": len(pages), "doc_size_bytes": len(data)},
        }

    def _transcription(self, form: dict[str, list[str]], audio: Upload) -> dict:
        """A transcription response, shaped as the SDK's TranscriptionResponse."""
        heard = self.transcript
        text = heard(audio.data) if callable(heard) else heard
        text = f"Stub transcript of {len(audio.data)} bytes" if text is None else text
        seconds = max(1, len(audio.data) // 2000)  # Opus voice notes: about 2 KB a second
        return {
            "model": (form.get("model") or [MODELS[0]])[0],
            "text": text,
            "language": self.transcript_language,
            "segments": [],
            "usage": {
                "prompt_tokens": 0,
                "completion_tokens": len(text.split()),
                "total_tokens": len(text.split()),
                "prompt_audio_seconds": seconds,
            },
        }

    def _chat(self, body: dict) -> dict:
        reply = self.reply
        text = reply(body) if callable(reply) else reply if reply is not None else None
        text = default_reply(body) if text is None else text
        prompt_tokens, completion_tokens = self.usage
        return {
            "id": uuid.uuid4().hex,
            "object": "chat.completion",
            "model": body.get("model", MODELS[0]),
            "created": int(time.time()),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "tool_calls": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
