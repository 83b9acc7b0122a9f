"""Mistral OCR for scanned PDFs at ingest (the Ocr protocol), deadline-bound."""

from __future__ import annotations

import base64
import logging
from typing import Any

from bot.answer.mistral.client import OneModelService
from bot.deadline import Deadline
from bot.errors import ModelFailed

logger = logging.getLogger(__name__)

OCR_MODEL = "mistral-ocr-latest"
# A first request must have time to upload the document (up to 50 MB, base64 in the JSON
# body) and have its pages read: below this a call is not worth starting.
MIN_OCR_SECONDS = 5.0


class MistralOcr(OneModelService):
    """The text of a PDF's pages by Mistral's OCR API, one request per document."""

    default_model = OCR_MODEL
    default_pool_size = 2  # ingest reads one file at a time

    def read_pdf(self, data: bytes, pages: int, deadline: Deadline) -> list[str]:
        """Each page's Markdown, in order ("" for a page the API left out); raises
        ModelFailed with a short reason."""
        # Inline as a data URL: no upload to Mistral's file store that would outlive ingest.
        url = "data:application/pdf;base64," + base64.b64encode(data).decode("ascii")
        response, _ = self._client.call(
            lambda sdk, timeout_ms: sdk.ocr.process(
                model=self.model,
                document={"type": "document_url", "document_url": url},
                include_image_base64=False,
                image_limit=0,  # the text is all ingest keeps
                include_blocks=False,
                timeout_ms=timeout_ms,
                retries=None,
            ),
            deadline,
            what="ocr",
            min_seconds=MIN_OCR_SECONDS,
        )
        return self._texts(response, pages)

    def _texts(self, response: Any, pages: int) -> list[str]:
        """The pages' Markdown by their 0-based index; indexes out of range are ignored."""
        texts = [""] * pages
        try:
            for page in response.pages:
                if isinstance(page.index, int) and 0 <= page.index < pages:
                    texts[page.index] = str(page.markdown or "")
        except (AttributeError, TypeError):  # not the SDK's model
            logger.warning("mistral ocr: unexpected response shape")
            raise ModelFailed("invalid response") from None
        return texts
