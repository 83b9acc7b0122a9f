"""One SDK client per process, failures classified, and the one deadline-bound retry loop."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import httpx2
from mistralai.client import Mistral, errors

from bot.answer.mistral.speed import speed_up_sdk
from bot.answer.mistral.transport import deadline_client
from bot.deadline import Deadline
from bot.errors import ModelFailed

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 5.0  # a longer Retry-After means "not within this webhook"

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class _Failure(Exception):
    """One failed attempt, classified: short reason, retryable, server-requested wait."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    """Seconds asked for by `retry-after-ms` or a numeric `Retry-After`; dates are ignored."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if headers.get("retry-after"):
            return max(0.0, float(headers["retry-after"]))
    except (TypeError, ValueError):
        pass
    return None


def classify(exc: BaseException) -> _Failure:
    """Map an SDK or transport exception to a short, log-safe failure."""
    if isinstance(exc, httpx2.TimeoutException):
        # The timeout was the whole remaining budget: nothing left to retry with.
        return _Failure("timeout", retryable=False)
    if isinstance(exc, httpx2.TransportError | errors.NoResponseError):
        return _Failure("connection error", retryable=True)
    if isinstance(exc, errors.ResponseValidationError):
        return _Failure("invalid response", retryable=False)
    if isinstance(exc, errors.MistralError):
        status = exc.status_code
        if 200 <= status < 300:
            return _Failure("invalid response", retryable=False)
        return _Failure(
            f"http {status}",
            retryable=status in _RETRY_STATUS,
            retry_after=_retry_after(exc.headers),
        )
    return _Failure("unexpected error", retryable=False)


def failed(what: str, reason: str, attempts: int, started: float) -> ModelFailed:
    """The error to raise for a failed `what` ("answer", "embeddings"), logged in one line."""
    elapsed = time.monotonic() - started
    logger.warning("mistral %s failed: %s (attempts=%d, %.2fs)", what, reason, attempts, elapsed)
    return ModelFailed(reason)


def _wait(failure: _Failure, attempt: int) -> float | None:
    """Seconds to wait before retrying after `attempt`, or None to give up now."""
    if not failure.retryable or attempt == MAX_ATTEMPTS:
        return None
    wait = failure.retry_after
    if wait is None:
        wait = min(2.0, 0.25 * 2 ** (attempt - 1)) + random.uniform(0, 0.1)
    return None if wait > MAX_RETRY_AFTER else wait


class ProcessClient:
    """One pooled HTTP client and SDK per process: created on first use, again after a fork."""

    def __init__(self, api_key: str, server_url: str | None, pool_size: int) -> None:
        self._api_key, self._server_url, self._pool_size = api_key, server_url, pool_size
        self._lock = threading.Lock()
        self._pid = 0
        self._http: httpx2.Client | None = None
        self._sdk: Mistral | None = None

    def get(self) -> Mistral:
        """This process's SDK client."""
        pid, sdk = os.getpid(), self._sdk
        if sdk is not None and self._pid == pid:
            return sdk
        with self._lock:
            if self._sdk is None or self._pid != pid:
                # Here rather than at import: only a process that calls the API patches it.
                speed_up_sdk()
                # After a fork the parent's sockets are shared: drop them, never close them.
                limits = httpx2.Limits(
                    max_connections=self._pool_size, max_keepalive_connections=self._pool_size
                )
                # timeout_ms bounds the whole call there, not each read (see transport.py).
                self._http = deadline_client(limits)
                # retry_config=None: we retry ourselves, within the deadline (see call()).
                self._sdk = Mistral(
                    api_key=self._api_key,
                    server_url=self._server_url,
                    client=self._http,
                    retry_config=None,
                )
                self._pid = pid
            return self._sdk

    def close(self) -> None:
        """Close this process's connections; a parent's are only forgotten."""
        with self._lock:
            http, owned = self._http, self._pid == os.getpid()
            self._http = self._sdk = None
            self._pid = 0
        if http is not None and owned:
            http.close()

    def call(
        self,
        request: Callable[[Mistral, int], T],
        deadline: Deadline,
        *,
        what: str,
        reserve: float = 0.0,
        min_seconds: float,
    ) -> tuple[T, int]:
        """`request(sdk, timeout_ms)` and its attempts, retried while the deadline allows."""
        # 429, 5xx and connection errors are retried (Retry-After honoured) while the deadline
        # less `reserve` leaves `min_seconds` for another call; any failure raises ModelFailed.
        started = time.monotonic()
        failure = _Failure("no time", retryable=False)
        attempts = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            budget = deadline.remaining() - reserve
            if budget < min_seconds:  # below this a call cannot succeed: don't pay for one
                break
            attempts = attempt
            try:
                return request(self.get(), int(budget * 1000)), attempt
            except Exception as exc:  # every failure becomes ModelFailed below
                failure = classify(exc)
                if failure.reason == "unexpected error":
                    # Only the type: the message could quote the prompt.
                    logger.error("mistral call raised %s", type(exc).__name__)
            wait = _wait(failure, attempt)
            if wait is None or deadline.remaining() - reserve - wait < min_seconds:
                break
            logger.debug("mistral %s, retrying in %.2fs", failure.reason, wait)
            time.sleep(wait)
        raise failed(what, failure.reason, attempts, started)


class MistralService:
    """What the answerer and the embedder share: a key never shown, one SDK client per process."""

    model: str

    def __init__(self, api_key: str, server_url: str | None, pool_size: int) -> None:
        if not api_key:
            raise ValueError(f"{type(self).__name__} needs an API key")
        self.server_url = server_url or None
        self.pool_size = max(1, pool_size)
        self._client = ProcessClient(api_key, self.server_url, self.pool_size)

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, server_url={self.server_url!r})"

    def client(self) -> Mistral:
        """The process's SDK client, created on first use and again after a fork."""
        return self._client.get()

    def close(self) -> None:
        """Close this process's HTTP connections; the next call opens new ones."""
        self._client.close()

    after_fork = close


class OneModelService(MistralService):
    """A service of one model, its name chosen at construction (OCR, transcription)."""

    default_model: ClassVar[str]
    default_pool_size: ClassVar[int]

    def __init__(
        self, api_key: str, server_url: str | None = None, model: str = "", pool_size: int = 0
    ) -> None:
        super().__init__(api_key, server_url, pool_size or self.default_pool_size)
        self.model = self.name = model or self.default_model
