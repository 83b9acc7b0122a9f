"""A TCP relay on 127.0.0.1 that can be told to stop forwarding: a black-holed network.

A vanished host or a black-holed route does not refuse connections: packets go unanswered
and TCP retransmits them until the network is back. `blackhole()` emulates that for every
connection through the relay, open or new: bytes stay where they are (unread in the
sender's socket buffer, as unacknowledged segments would) and are delivered late, in
order, after `resume()`, unless the client gave up first. New connections complete their
handshake (the kernel accepts them) and then hear nothing, like a server that stopped.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_POLL_SECONDS = 0.05


class BlackHoleRelay:
    """Forwards 127.0.0.1:`port` to `target`; `blackhole()` and `resume()` switch it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    @property
    def address(self) -> str:
        """host:port to give the client instead of the target's."""
        return f"127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """Stop forwarding in both directions; nothing is refused or closed."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, late bytes first."""
        self._flowing.set()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """A black hole for the duration of the block."""
        self.blackhole()
        try:
            yield
        finally:
            self.resume()

    def close(self) -> None:
        """Stop accepting and close every relayed connection."""
        self._stopped.set()
        self._flowing.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink), name="relay-pipe", daemon=True
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes while flowing; while black-holed, leave them unread."""
        try:
            while not self._stopped.is_set():
                if not self._flowing.wait(_POLL_SECONDS):
                    continue
                readable, _, _ = select.select([source], [], [], _POLL_SECONDS)
                if not readable or not self._flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):  # ValueError: close() closed the socket under select
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
