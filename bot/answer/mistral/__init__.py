"""The Mistral adapter, the only code importing mistralai: answerer, embedder, OCR,
transcriber, their client."""

from __future__ import annotations

from bot.answer.mistral.answerer import MistralAnswerer
from bot.answer.mistral.embedder import MistralEmbedder
from bot.answer.mistral.ocr import MistralOcr
from bot.answer.mistral.transcriber import MistralTranscriber

__all__ = ["MistralAnswerer", "MistralEmbedder", "MistralOcr", "MistralTranscriber"]
