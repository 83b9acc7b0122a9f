"""The Ocr protocol: what ingest needs to read a scanned PDF, nothing more (a leaf: the
Mistral adapter implements it, ingest uses it, neither imports the other)."""

from __future__ import annotations

from typing import Protocol

from bot.deadline import Deadline


class Ocr(Protocol):
    """Reads the text of a PDF's pages from their images."""

    name: str

    def read_pdf(self, data: bytes, pages: int, deadline: Deadline) -> list[str]:
        """The text of each of the `pages` pages (Markdown, "" for a page without any), in
        order, within `deadline`; raises ModelFailed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
