"""Answers with Mistral's chat API, within the request's deadline; the only mistralai import."""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2
from mistralai.client import Mistral, errors, models

from bot.answer.prompt import DEFAULT_MAX_PASSAGE_CHARS, build_messages
from bot.answer.transport import deadline_client
from bot.deadline import Deadline
from bot.errors import AnswerFailed, EmbeddingFailed
from bot.models import Answer, Passage, Turn
from bot.text import xml_safe

logger = logging.getLogger(__name__)

MISTRAL_EMBED_DIMENSIONS = 1024  # mistral-embed's vector size
DEFAULT_MAX_TOKENS = 600  # about 2,000 characters: one or two WhatsApp messages
RESERVE_SECONDS = 0.3  # left over after the call for the extractive fallback and TwiML
MIN_CALL_SECONDS = 0.5  # below this a call cannot succeed; don't spend money trying
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 5.0  # a longer Retry-After means "not within this webhook"

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


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


_HEADING_RE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_BOLD_RE = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*|__(\S(?:.*?\S)?)__")
_LINK_RE = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_RULE_RE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$\n?", re.MULTILINE)
_TABLE_RULE_RE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$\n?", re.M
)
_TABLE_ROW_RE = re.compile(r"^[ \t]*\|(.+)\|[ \t]*$", re.MULTILINE)
_SOURCES_RE = re.compile(
    r"^[\s*_]*(sources?|fuentes?|fontes?|fonti|quellen?|bronnen|r[ée]f[ée]rences?)[\s*_]*:",
    re.IGNORECASE,
)


def to_whatsapp(text: str) -> str:
    """Rewrite Markdown into WhatsApp formatting: no headings or tables, *bold*, plain links."""
    # The JSON may carry escapes of characters no reply can hold (a control character, a
    # lone surrogate that cannot even be stored as UTF-8).
    text = xml_safe(text)
    text = _BOLD_RE.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = _HEADING_RE.sub(lambda m: f"*{m.group(1).strip('*_ ')}*", text)
    text = _LINK_RE.sub(r"\1 (\2)", text)
    text = _TABLE_RULE_RE.sub("", text)
    # WhatsApp has no tables: one line per row, cells separated by a dash.
    text = _TABLE_ROW_RE.sub(lambda m: " – ".join(c.strip() for c in m.group(1).split("|")), text)
    text = _RULE_RE.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _mentions(text: str, label: str) -> bool:
    """True when `label` appears in `text` as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE) is not None


def with_sources(text: str, passages: list[Passage]) -> tuple[str, tuple[str, ...]]:
    """Make sure the text ends by naming its sources; return the sources it names."""
    labels = list(dict.fromkeys(" ".join(p.source.split()) for p in passages if p.source.strip()))
    if not labels:
        return text, ()
    lines = text.rstrip().splitlines()
    start = None
    for index in range(len(lines) - 1, max(-1, len(lines) - 9), -1):
        if _SOURCES_RE.match(lines[index]):
            start = index
            break
    tail = "\n".join(lines[start:] if start is not None else lines[-1:])
    cited = [label for label in labels if _mentions(tail, label)]
    if cited:
        return text.rstrip(), tuple(cited)
    if start is not None:
        # A sources line that names none of our labels (e.g. "[1], [2]") is no use to a user.
        lines = lines[:start]
    body = "\n".join(lines).rstrip()
    return f"{body}\n\nSources: {'; '.join(labels)}".lstrip(), tuple(labels)


def _content_text(content: Any) -> str:
    """The text of a message's content, which is a string or a list of chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(getattr(chunk, "text", "") or "" for chunk in content)
    return ""


_SDK_MESSAGES = {
    "system": models.SystemMessage,
    "user": models.UserMessage,
    "assistant": models.AssistantMessage,
}


def sdk_messages(messages: list[dict]) -> list[Any]:
    """Our role/content dicts as the SDK's message models (same JSON on the wire).

    Given dicts, the SDK walks every field of its message union before validating them;
    given its own models it skips that: ~4 ms of CPU less per call."""
    return [_SDK_MESSAGES[m["role"]](content=m["content"]) for m in messages]


def _memoised(build: Callable[..., Any], key: Callable[..., Any]) -> Callable[..., Any]:
    """`build`, remembering its result per `key(...)`; unhashable keys are not remembered."""
    cache: dict[Any, Any] = {}

    def cached(*args: Any, **kwargs: Any) -> Any:
        try:
            found = cache.get(k := key(*args, **kwargs))
        except TypeError:  # an unhashable type: build it as the SDK would
            return build(*args, **kwargs)
        if found is None:
            found = cache[k] = build(*args, **kwargs)
        return found

    cached.__wrapped__ = build  # type: ignore[attr-defined]
    return cached


def speed_up_sdk() -> bool:
    """Cache what the generated SDK rebuilds on every call; True when applied.

    `chat.complete` creates a new pydantic model class (schema generation included) for
    each of its ~8 (un)marshal steps and re-evaluates the request's type hints, every
    call: ~10 ms of CPU per answer, most of a webhook's own work. The classes depend only
    on the type they wrap, so one per type is kept. Only the SDK's own module globals are
    replaced; if an SDK upgrade renames them, nothing is patched and calls stay correct.
    """
    try:
        from mistralai.client.utils import forms, queryparams, serializers, url
    except ImportError:
        return False
    applied = False
    create = getattr(serializers, "create_model", None)
    if create is not None and not hasattr(create, "__wrapped__"):

        def model_key(name: str, **fields: Any) -> tuple:
            config = fields.get("__config__") or {}
            return (name, tuple(sorted(config.items())), tuple(fields.get("body") or ()))

        serializers.create_model = _memoised(create, model_key)
        applied = True
    for module in (queryparams, url, forms):
        hints = getattr(module, "get_type_hints", None)
        if hints is not None and not hasattr(hints, "__wrapped__"):
            module.get_type_hints = _memoised(hints, lambda cls, *a, **kw: (cls, a, *kw.items()))
            applied = True
    return applied


speed_up_sdk()


class _ProcessClient:
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
                # After a fork the parent's sockets are shared: drop them, never close them.
                limits = httpx2.Limits(
                    max_connections=self._pool_size, max_keepalive_connections=self._pool_size
                )
                # timeout_ms bounds the whole call there, not each read (see transport.py).
                self._http = deadline_client(limits)
                # retry_config=None: we retry ourselves, within the deadline.
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


class MistralAnswerer:
    """Mistral chat completions with one pooled HTTP client per process and deadline-bound calls."""

    name = "mistral"

    def __init__(
        self,
        api_key: str,
        model: str,
        server_url: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        pool_size: int = 64,
        temperature: float = 0.2,
        reserve: float = RESERVE_SECONDS,
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
    ) -> None:
        if not api_key:
            raise ValueError("MistralAnswerer needs an API key")
        self._api_key = api_key
        self.model = model
        self.server_url = server_url or None
        self.max_tokens = max_tokens
        self.pool_size = max(1, pool_size)
        self.temperature = temperature
        self.reserve = max(0.0, reserve)
        self.max_passage_chars = max_passage_chars
        self._client = _ProcessClient(api_key, self.server_url, self.pool_size)

    def __repr__(self) -> str:  # never show the key
        return f"MistralAnswerer(model={self.model!r}, server_url={self.server_url!r})"

    def client(self) -> Mistral:
        """The process's SDK client, created on first use and again after a fork."""
        return self._client.get()

    def close(self) -> None:
        """Close this process's HTTP connections; the next call opens new ones."""
        self._client.close()

    reset = after_fork = close

    def ping(self, deadline: Deadline) -> None:
        """List the models once (key valid, API reachable); raise AnswerFailed if not."""
        try:
            self.client().models.list(
                timeout_ms=max(1, int(deadline.remaining() * 1000)), retries=None
            )
        except Exception as exc:  # every failure becomes AnswerFailed, as for answers
            raise AnswerFailed(classify(exc).reason) from None

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """Ask Mistral; raise AnswerFailed with a short reason on any failure."""
        messages = build_messages(question, passages, turns, self.max_passage_chars)
        started = time.monotonic()
        response, attempts = self._complete(messages, deadline, started)
        try:
            choice = response.choices[0] if response and response.choices else None
            text = _content_text(choice.message.content if choice and choice.message else None)
            tokens = int(getattr(response.usage, "total_tokens", 0) or 0)
        except (AttributeError, TypeError, ValueError):
            text, tokens = "", 0
        text = to_whatsapp(text)
        if not text:
            raise self._failed("empty response", attempts, started)
        text, sources = with_sources(text, passages)
        return Answer(text, sources=sources, backend="mistral", tokens=tokens)

    def _complete(self, messages: list[dict], deadline: Deadline, started: float) -> tuple:
        """Call the API, retrying 429/5xx/connection errors while the deadline allows."""
        failure = _Failure("no time", retryable=False)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            budget = deadline.remaining() - self.reserve
            if budget < MIN_CALL_SECONDS:
                raise self._failed(failure.reason, attempt - 1, started)
            try:
                response = self.client().chat.complete(
                    model=self.model,
                    messages=sdk_messages(messages),
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    timeout_ms=int(budget * 1000),
                    retries=None,
                )
                return response, attempt
            except Exception as exc:  # every failure becomes AnswerFailed below
                failure = classify(exc)
                if failure.reason == "unexpected error":
                    # Only the type: the message could quote the prompt.
                    logger.error("mistral call raised %s", type(exc).__name__)
            if not failure.retryable or attempt == MAX_ATTEMPTS:
                break
            wait = failure.retry_after
            if wait is None:
                wait = min(2.0, 0.25 * 2 ** (attempt - 1)) + random.uniform(0, 0.1)
            if wait > MAX_RETRY_AFTER:
                break
            if deadline.remaining() - self.reserve - wait < MIN_CALL_SECONDS:
                break
            logger.debug("mistral %s, retrying in %.2fs", failure.reason, wait)
            time.sleep(wait)
        raise self._failed(failure.reason, attempt, started)

    def _failed(self, reason: str, attempts: int, started: float) -> AnswerFailed:
        logger.warning(
            "mistral answer failed: %s (attempts=%d, %.2fs)",
            reason,
            attempts,
            time.monotonic() - started,
        )
        return AnswerFailed(reason)


EMBED_MODEL = "mistral-embed"
EMBED_BATCH = 32  # texts per request
EMBED_BATCH_CHARS = 32_000  # about 8,000 tokens: well inside one request's limit
MIN_EMBED_SECONDS = 0.2  # one short question embeds in well under this on a warm pool


def _batches(texts: list[str], size: int, max_chars: int) -> list[list[str]]:
    """Consecutive batches of at most `size` texts and (unless one text is longer) chars."""
    batches: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for text in texts:
        if current and (len(current) >= size or chars + len(text) > max_chars):
            batches.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    return [*batches, current] if current else batches


class MistralEmbedder:
    """mistral-embed vectors in batches, deadline-bound, one pooled SDK client per process."""

    name = EMBED_MODEL
    dimensions = MISTRAL_EMBED_DIMENSIONS

    def __init__(
        self,
        api_key: str,
        server_url: str | None = None,
        model: str = EMBED_MODEL,
        batch_size: int = EMBED_BATCH,
        pool_size: int = 16,
    ) -> None:
        if not api_key:
            raise ValueError("MistralEmbedder needs an API key")
        self._api_key = api_key
        self.server_url = server_url or None
        self.model = model
        self.batch_size = max(1, batch_size)
        self.pool_size = max(1, pool_size)
        self._client = _ProcessClient(api_key, self.server_url, self.pool_size)

    def __repr__(self) -> str:  # never show the key
        return f"MistralEmbedder(model={self.model!r}, server_url={self.server_url!r})"

    def client(self) -> Mistral:
        """The process's SDK client, created on first use and again after a fork."""
        return self._client.get()

    def close(self) -> None:
        """Close this process's HTTP connections; the next call opens new ones."""
        self._client.close()

    after_fork = close

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        """One vector per text, in order; raises EmbeddingFailed with a short reason."""
        vectors: list[list[float]] = []
        for batch in _batches(texts, self.batch_size, EMBED_BATCH_CHARS):
            vectors.extend(self._embed_batch(batch, deadline))
        return vectors

    def _embed_batch(self, batch: list[str], deadline: Deadline) -> list[list[float]]:
        """One request, retried on 429/5xx/connection errors while the deadline allows."""
        failure = _Failure("no time", retryable=False)
        attempt = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            budget = deadline.remaining()
            if budget < MIN_EMBED_SECONDS:
                break
            try:
                response = self.client().embeddings.create(
                    model=self.model, inputs=batch, timeout_ms=int(budget * 1000), retries=None
                )
                return self._vectors(response, len(batch))
            except EmbeddingFailed:
                raise
            except Exception as exc:  # every failure becomes EmbeddingFailed below
                failure = classify(exc)
            if not failure.retryable or attempt == MAX_ATTEMPTS:
                break
            wait = failure.retry_after
            if wait is None:
                wait = min(2.0, 0.25 * 2 ** (attempt - 1)) + random.uniform(0, 0.1)
            if wait > MAX_RETRY_AFTER or deadline.remaining() - wait < MIN_EMBED_SECONDS:
                break
            time.sleep(wait)
        logger.warning("mistral embeddings failed: %s (attempts=%d)", failure.reason, attempt)
        raise EmbeddingFailed(failure.reason)

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        """The vectors in input order, checked for count and size."""
        items = sorted(getattr(response, "data", None) or [], key=lambda item: item.index or 0)
        vectors = [list(item.embedding or []) for item in items]
        if len(vectors) != expected or any(len(v) != self.dimensions for v in vectors):
            logger.warning("mistral embeddings: unexpected response shape")
            raise EmbeddingFailed("invalid response")
        return vectors
