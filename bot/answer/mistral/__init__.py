"""The Mistral adapter, the only code importing mistralai: answerer, embedder, their client."""

from __future__ import annotations

from bot.answer.mistral.answerer import MistralAnswerer
from bot.answer.mistral.embedder import MistralEmbedder

__all__ = ["MistralAnswerer", "MistralEmbedder"]
