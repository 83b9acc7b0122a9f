"""What an admin hears about a document they sent: how the add went (in which collection,
once collections say who reads what), why it was not downloaded, or why its caption's
"#name" is refused."""

from __future__ import annotations

from bot.knowledge.ingest_file import ADDED, UNCHANGED, UPDATED, FileResult
from bot.media import DOCUMENT_MAX_BYTES
from bot.readers import Readers, collection_name
from bot.texts import (
    DOCUMENT_ADDED,
    DOCUMENT_ADDED_TO,
    DOCUMENT_BAD_COLLECTION,
    DOCUMENT_FAILED,
    DOCUMENT_MOVED,
    DOCUMENT_NO_SUCH_COLLECTION,
    DOCUMENT_NOT_DOWNLOADED,
    DOCUMENT_TOO_LARGE,
    DOCUMENT_UNCHANGED,
    DOCUMENT_UNCHANGED_IN,
    DOCUMENT_UPDATED,
    DOCUMENT_UPDATED_IN,
    DOCUMENT_WRONG_TYPE,
    SOME_DOCUMENT,
)

# Each stored outcome's reply: (without the collection, naming it).
_STORED = {
    ADDED: (DOCUMENT_ADDED, DOCUMENT_ADDED_TO),
    UPDATED: (DOCUMENT_UPDATED, DOCUMENT_UPDATED_IN),
    UNCHANGED: (DOCUMENT_UNCHANGED, DOCUMENT_UNCHANGED_IN),
}


def passages_text(n: int) -> str:
    return f"{n} passage" if n == 1 else f"{n} passages"


def outcome_text(result: FileResult, title: str, collection: str = "") -> str:
    """The reply that tells an admin what became of their document, naming `collection`
    when given."""
    shown = result.title or title or SOME_DOCUMENT
    if result.moved_from:
        return DOCUMENT_MOVED.format(title=shown, previous=result.moved_from, collection=collection)
    if result.outcome not in _STORED:
        return DOCUMENT_FAILED.format(title=shown, reason=result.reason.rstrip("."))
    plain, placed = _STORED[result.outcome]
    passages = passages_text(result.passages)
    return (placed if collection else plain).format(
        title=shown, collection=collection, passages=passages
    )


def download_failed_text(reason: str) -> str:
    """The reply to a document that could not be downloaded (MediaUnavailable's reason)."""
    if reason == "too large":
        return DOCUMENT_TOO_LARGE.format(mb=DOCUMENT_MAX_BYTES // 2**20)
    if reason == "wrong type":
        return DOCUMENT_WRONG_TYPE
    return DOCUMENT_NOT_DOWNLOADED


def collection_refusal(readers: Readers, name: str) -> str:
    """The refusal of a caption's "#name": once collections are configured, one of them;
    before, any valid name. "" when it is fine, or when the caption names none."""
    if not name:
        return ""
    if readers.configured:
        if name in readers.names:
            return ""
        names = ", ".join(f"#{known}" for known in readers.names)
        return DOCUMENT_NO_SUCH_COLLECTION.format(name=name, names=names)
    try:
        collection_name(name)
    except ValueError:
        return DOCUMENT_BAD_COLLECTION.format(name=name)
    return ""
