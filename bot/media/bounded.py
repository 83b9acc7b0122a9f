"""An http.client connection on which a Deadline bounds the whole exchange, body included.

A socket timeout bounds one operation: a server that sends a byte every 0.9 s holds a
reader with a 1 s timeout for as long as it likes. Here every connect, write and read
first sets the socket's timeout to what the deadline has left, and fails once nothing is
left, so connect, TLS handshake, headers and body together end by the deadline. Not
bounded: the DNS lookup (getaddrinfo takes no timeout; the resolver's own applies).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl

from bot.deadline import Deadline, DeadlineExceeded


def _left(deadline: Deadline) -> float:
    """Seconds the deadline has left; DeadlineExceeded (a TimeoutError) when none."""
    left = deadline.remaining()
    if left <= 0:
        raise DeadlineExceeded("media download deadline exceeded")
    return left


class _BoundedSocket:
    """The parts of a socket http.client uses, each waiting at most until the deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline
        # As a real socket does: closed once both the connection and its readers let go
        # (http.client closes the connection early and lets the response read to the end).
        self._readers = 0
        self._closing = False

    def sendall(self, data: bytes) -> None:
        # Since Python 3.5 a timeout bounds a whole sendall, not each piece.
        self._sock.settimeout(_left(self._deadline))
        self._sock.sendall(data)

    def recv_into(self, buffer: memoryview, nbytes: int = 0) -> int:
        self._sock.settimeout(_left(self._deadline))
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        """The buffered reader HTTPResponse reads the status line, headers and body from."""
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        self._closing = True
        if self._readers <= 0:
            self._sock.close()

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing:
            self.close()


class _Reader(io.RawIOBase):
    """Raw reads through the bounded socket."""

    def __init__(self, sock: _BoundedSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()


def _connect(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to the first address that answers, all attempts within the deadline
    (socket.create_connection would give each address the whole timeout)."""
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        timeout = _left(deadline)
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def open_connection(
    scheme: str, host: str, port: int, deadline: Deadline, context: ssl.SSLContext
) -> http.client.HTTPConnection:
    """A connected HTTP(S) connection whose every socket operation ends by `deadline`."""
    sock = _connect(host, port, deadline)
    try:
        if scheme == "https":
            # CPython bounds the whole handshake by the timeout set when it starts.
            sock.settimeout(_left(deadline))
            sock = context.wrap_socket(sock, server_hostname=host)
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, port)
    except BaseException:
        sock.close()
        raise
    # Already connected: http.client sends on this socket and never calls connect().
    connection.sock = _BoundedSocket(sock, deadline)  # type: ignore[assignment]
    return connection
