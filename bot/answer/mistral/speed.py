"""Cheaper SDK calls: the generated SDK's per-call rebuilding cached, messages as its models."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mistralai.client import models

_SDK_MESSAGES = {
    "system": models.SystemMessage,
    "user": models.UserMessage,
    "assistant": models.AssistantMessage,
}

# The answerer's and the embedder's clients may be built at once, in two threads.
_LOCK = threading.Lock()


# Given dicts, the SDK walks every field of its message union before validating them; given
# its own models it skips that: ~4 ms of CPU less per call.
def sdk_messages(messages: list[dict]) -> list[Any]:
    """Our role/content dicts as the SDK's message models (same JSON on the wire)."""
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


def _model_key(name: str, **fields: Any) -> tuple:
    """What a `create_model` class depends on: its name, config and wrapped type."""
    config = fields.get("__config__") or {}
    return (name, tuple(sorted(config.items())), tuple(fields.get("body") or ()))


# `chat.complete` creates a new pydantic model class (schema generation included) for each of
# its ~8 (un)marshal steps and re-evaluates the request's type hints, every call: ~10 ms of
# CPU per answer, most of a webhook's own work. The classes depend only on the type they
# wrap, so one per type is kept. Only the SDK's own module globals are replaced; if an SDK
# upgrade renames them, nothing is patched and calls stay correct.
def speed_up_sdk() -> bool:
    """Cache what the generated SDK rebuilds on every call; True when this call applied it."""
    try:
        from mistralai.client.utils import forms, queryparams, serializers, url
    except ImportError:
        return False
    applied = False
    with _LOCK:
        create = getattr(serializers, "create_model", None)
        if create is not None and not hasattr(create, "__wrapped__"):
            serializers.create_model = _memoised(create, _model_key)
            applied = True
        for module in (queryparams, url, forms):
            hints = getattr(module, "get_type_hints", None)
            if hints is not None and not hasattr(hints, "__wrapped__"):
                module.get_type_hints = _memoised(
                    hints, lambda cls, *a, **kw: (cls, a, *kw.items())
                )
                applied = True
    return applied
