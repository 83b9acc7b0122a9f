"""An HTTP client on which a request's timeout bounds the whole request, body included."""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore2
import httpx2

# httpx's timeouts bound each socket operation: a server sending 16 bytes every 0.9 s, or a
# body that never ends, holds a call with a 2 s timeout for as long as it likes. Here the
# request's largest timeout (the SDK's `timeout_ms`) becomes an end time, and every socket
# operation made for the request waits at most until then. Blocking calls are cut short in
# the calling thread itself: no watchdog thread, nothing left running after the call. A
# request cut short leaves its response unfinished, which httpcore never pools: it closes the
# connection. Not bounded: the DNS lookup (getaddrinfo takes no timeout; the resolver's own
# applies).

# When the request this thread is working on must end (monotonic seconds), or None.
# A context variable, not an attribute of the client: one client serves many threads.
_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("http_end", default=None)

# The request's end, kept in its extensions: httpx copies them to each redirect it follows,
# so the hops of one call share one end instead of getting a new budget each.
_END_KEY = "deadline_end"

# Writes go out in pieces of at most this, each bounded by the time left, so a server
# that reads slowly cannot stretch one long write past the end.
WRITE_PIECE = 16 * 1024


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout` cut to the time the current request has left; raise `expired` at its end."""
    end = _END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("request deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore2.NetworkStream):
    """A connection whose reads and writes wait no longer than the current request has left."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to `max_bytes`, waiting at most until the request's end."""
        return self._stream.read(max_bytes, _left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """All of `buffer`, each piece waiting at most until the request's end."""
        for start in range(0, len(buffer), WRITE_PIECE):
            piece = buffer[start : start + WRITE_PIECE]
            self._stream.write(piece, _left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        """Close the connection."""
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        """The TLS connection, its handshake ending by the request's end."""
        timeout = _left(timeout, httpcore2.ConnectTimeout)
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """What the wrapped connection says (socket, peer, readability)."""
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore2.NetworkBackend):
    """httpcore's network backend, opening connections that respect the request's end."""

    def __init__(self, backend: httpcore2.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        """A TCP connection, connecting for at most the time left."""
        timeout = _left(timeout, httpcore2.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundedStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        """A Unix socket connection, connecting for at most the time left."""
        timeout = _left(timeout, httpcore2.ConnectTimeout)
        return _BoundedStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        """Sleep, as the wrapped backend does."""
        self._backend.sleep(seconds)


class _BoundedBody(httpx2.SyncByteStream):
    """A response body read under its request's end, however slowly or long it is sent."""

    def __init__(self, stream: httpx2.SyncByteStream, end: float) -> None:
        self._stream, self._end = stream, end

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._stream)
        while True:
            # Set around each read, never across a yield: the caller's code runs in between.
            token = _END.set(self._end)
            try:
                chunk = next(chunks, None)
            finally:
                _END.reset(token)
            if chunk is None:
                return
            if time.monotonic() >= self._end:
                # A chunk already buffered needs no socket read: check the end here too.
                raise httpx2.ReadTimeout("request deadline exceeded")
            yield chunk

    def close(self) -> None:
        """Close the body; an unfinished one closes its connection (httpcore never pools it)."""
        self._stream.close()


class DeadlineTransport(httpx2.BaseTransport):
    """Ends each request, response body included, within its largest timeout from its start."""

    def __init__(self, transport: httpx2.BaseTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send the request and return its response, both bounded by the request's end."""
        timeouts = request.extensions.get("timeout") or {}
        end = request.extensions.get(_END_KEY)
        if end is None:
            budget = max((t for t in timeouts.values() if t is not None), default=None)
            if budget is None:  # no timeout asked for: nothing to bound
                return self._transport.handle_request(request)
            end = request.extensions[_END_KEY] = time.monotonic() + budget
        left = end - time.monotonic()
        if left <= 0:
            raise httpx2.PoolTimeout("request deadline exceeded")
        # The wait for a pooled connection is one timeout, not per operation: cut it here.
        request.extensions["timeout"] = {
            phase: left if t is None else min(t, left) for phase, t in timeouts.items()
        }
        token = _END.set(end)
        try:
            response = self._transport.handle_request(request)
        finally:
            _END.reset(token)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_BoundedBody(response.stream, end),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()


def deadline_client(limits: httpx2.Limits) -> httpx2.Client:
    """A pooled client on which each request's timeout is its whole budget, not per read."""
    transport = httpx2.HTTPTransport(limits=limits)
    # HTTPTransport takes no network backend, its httpcore pool does (read when it opens a
    # connection): set it there rather than re-implement HTTPTransport with its exceptions.
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore2.NetworkBackend):
        # An upgrade that moves these fails every call (logged, tests red), never silently
        # runs with per-read timeouts only.
        raise RuntimeError("httpx2's pool has no network backend to bound: check the upgrade")
    pool._network_backend = _BoundedBackend(backend)
    # trust_env=False: httpx would send requests matching an HTTPS_PROXY through a transport
    # of its own, bounded per read only. No proxy is used for the model API.
    return httpx2.Client(
        transport=DeadlineTransport(transport), follow_redirects=True, trust_env=False
    )
