"""Answers with Mistral's chat API, within the request's deadline."""

from __future__ import annotations

import time
from typing import Any

from bot.answer.mistral.client import MistralService, classify, failed
from bot.answer.mistral.speed import sdk_messages
from bot.answer.prompt import DEFAULT_MAX_PASSAGE_CHARS, build_messages
from bot.answer.whatsapp import to_whatsapp, with_sources
from bot.deadline import Deadline
from bot.errors import ModelFailed
from bot.models import Answer, Passage, Turn

DEFAULT_MAX_TOKENS = 600  # about 2,000 characters: one or two WhatsApp messages
RESERVE_SECONDS = 0.3  # left over after the call for the extractive fallback and TwiML
MIN_CALL_SECONDS = 0.5  # below this a call cannot succeed; don't spend money trying


def _content_text(content: Any) -> str:
    """The text of a message's content, which is a string or a list of chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(getattr(chunk, "text", "") or "" for chunk in content)
    return ""


class MistralAnswerer(MistralService):
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
        super().__init__(api_key, server_url, pool_size)
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.reserve = max(0.0, reserve)
        self.max_passage_chars = max_passage_chars

    reset = MistralService.close

    def ping(self, deadline: Deadline) -> None:
        """List the models once (key valid, API reachable); raise ModelFailed if not."""
        try:
            self.client().models.list(
                timeout_ms=max(1, int(deadline.remaining() * 1000)), retries=None
            )
        except Exception as exc:  # every failure becomes ModelFailed, as for answers
            raise ModelFailed(classify(exc).reason) from None

    def answer(
        self, question: str, passages: list[Passage], turns: list[Turn], deadline: Deadline
    ) -> Answer:
        """Ask Mistral; raise ModelFailed with a short reason on any failure."""
        messages = build_messages(question, passages, turns, self.max_passage_chars)
        started = time.monotonic()
        response, attempts = self._client.call(
            lambda sdk, timeout_ms: sdk.chat.complete(
                model=self.model,
                messages=sdk_messages(messages),
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                timeout_ms=timeout_ms,
                retries=None,
            ),
            deadline,
            what="answer",
            reserve=self.reserve,
            min_seconds=MIN_CALL_SECONDS,
        )
        try:
            choice = response.choices[0] if response and response.choices else None
            text = _content_text(choice.message.content if choice and choice.message else None)
            tokens = int(getattr(response.usage, "total_tokens", 0) or 0)
        except (AttributeError, TypeError, ValueError):
            text, tokens = "", 0
        text = to_whatsapp(text)
        if not text:
            raise failed("answer", "empty response", attempts, started)
        text, sources = with_sources(text, passages)
        return Answer(text, sources=sources, backend="mistral", tokens=tokens)
