"""One file, on disk or held in memory (a document sent to the bot): compared with the
stored version by sha256, parsed (a PDF without a text layer read by OCR when there is
one), and reported as a FileResult. `ingest.py` walks folders with it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.deadline import Deadline
from bot.errors import ModelFailed
from bot.knowledge.formats import ParseError, max_bytes, parse_file, pdf
from bot.knowledge.formats.base import document_id, humanise_stem
from bot.knowledge.store import Document, DocumentInfo, KnowledgeStore
from bot.ocr import Ocr
from bot.readers import DEFAULT_COLLECTION

logger = logging.getLogger(__name__)

# One scanned PDF's OCR request, retries included: Mistral reads up to 1,000 pages in one.
OCR_SECONDS = 300.0

# What ingesting one file did (FileResult.outcome).
ADDED, UPDATED, UNCHANGED = "added", "updated", "unchanged"
# Left out for a reason that is no failure (a scan without OCR), and failed (a broken file).
SKIPPED, FAILED = "skipped", "failed"


@dataclass(frozen=True)
class FileResult:
    """What ingesting one file did: its outcome, the stored document's title, passages and
    people, or the one-line reason (without the key) it was skipped or failed. The title
    of an unchanged file is only known when the caller gave one. `collection` is the one
    the document is in afterwards ("" when it kept a stored one, not looked up), and
    `moved_from` the one an unchanged document left for it."""

    key: str
    outcome: str
    title: str = ""
    passages: int = 0
    people: tuple[str, ...] = ()
    reason: str = ""
    collection: str = ""
    moved_from: str = ""


@dataclass(frozen=True)
class Placement:
    """Which collection documents go to: `into` for every one (`ingest --collection`, a
    caption's "#name"), else a stored one keeps its own and a new one goes where a stored
    document with the same bytes is (`known`: a renamed or moved file, a document sent again
    under another title), else to `default`."""

    into: str = ""
    default: str = DEFAULT_COLLECTION
    known: Mapping[str, str] = field(default_factory=dict)  # sha256 -> collection

    def of(self, stored: bool, sha256: str = "") -> str:
        """The Document.collection to write: "" keeps the stored document's."""
        if self.into or stored:
            return self.into
        return self.known.get(sha256, self.default)

    def knowing(self, documents: Iterable[DocumentInfo]) -> Placement:
        """This placement, told where the stored documents' contents are (a content stored
        in several collections counts as in the one that is not the default: a board
        document renamed must not become everyone's)."""
        if self.into:
            return self
        known: dict[str, str] = {}
        for doc in documents:
            if doc.sha256 and known.get(doc.sha256, self.default) == self.default:
                known[doc.sha256] = doc.collection
        return replace(self, known=known)


# New documents in "general", stored ones where they are: as before collections existed.
DEFAULT_PLACEMENT = Placement()


def _size(n: int) -> str:
    """A file size for a summary line: "1,234 bytes", "75 MB"."""
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.0f} MB"


def too_large(size: int, limit: int) -> str:
    return f"too large ({_size(size)}; the limit is {_size(limit)})"


# -- one file held in memory (a document sent to the bot) ------------------------------


def ingest_file(
    store: KnowledgeStore,
    key: str,
    data: bytes,
    *,
    name: str = "",
    title: str = "",
    ocr: Ocr | None = None,
    deadline: Deadline | None = None,
    placement: Placement = DEFAULT_PLACEMENT,
) -> FileResult:
    """Ingest one file held in memory exactly as `ingest_paths` ingests one on disk.

    `key` is its stored source (the document id derives from it); `name` is the file name
    whose suffix chooses the format (default: the key's last part). Checked for size, not
    parsed again when unchanged (the same sha256 under the same key), replacing the stored
    version when changed. `title` replaces the title the file gives itself. `deadline`
    bounds OCR (default OCR_SECONDS from when it starts). `placement` chooses its
    collection; an unchanged document moves to `placement.into`. The file's own faults
    become a SKIPPED or FAILED result; a store failure raises KnowledgeUnavailable."""
    path = Path(name or key)
    if (limit := max_bytes(path)) is not None and len(data) > limit:
        return FileResult(key, FAILED, reason=too_large(len(data), limit))
    result, doc = prepare(store, key, path, data, ocr, deadline, title, placement)
    if doc is not None:
        store.upsert(doc)
    return _moved(store, result, placement.into)


# Chooses a document's (key, title) from the parsed Document and the title it gives itself
# ("" when it names itself nowhere).
Naming = Callable[[Document, str], tuple[str, str]]


def ingest_named(
    store: KnowledgeStore,
    name: str,
    data: bytes,
    naming: Naming,
    *,
    ocr: Ocr | None = None,
    deadline: Deadline | None = None,
    placement: Placement = DEFAULT_PLACEMENT,
) -> FileResult:
    """`ingest_file` for a file whose key depends on what it says (its title): parsed first,
    then keyed by `naming`, then compared with the stored version and stored if it differs.
    `name` is a file name for the format (its suffix) and nothing else."""
    path = Path(name)
    if (limit := max_bytes(path)) is not None and len(data) > limit:
        return FileResult(name, FAILED, reason=too_large(len(data), limit))
    try:
        doc = _parse_or_refuse(path, data, document_id(name), name, ocr, deadline)
    except _NotIngested as refused:
        return FileResult(name, refused.outcome, reason=refused.reason)
    # The parsers fall back to the file name for a title: that is no title of its own.
    key, title = naming(doc, "" if doc.title == humanise_stem(path) else doc.title)
    doc = replace(doc, id=document_id(key), source=key, title=title)
    stored_sha = store.document_sha(doc.id)
    if stored_sha == doc.sha256:
        unchanged = FileResult(key, UNCHANGED, doc.title, len(doc.chunks), doc.people)
        return _moved(store, unchanged, placement.into)
    doc = replace(doc, collection=placement.of(stored_sha is not None))
    store.upsert(doc)
    return _stored(key, doc, stored_sha)


def _moved(store: KnowledgeStore, result: FileResult, into: str) -> FileResult:
    """An unchanged document moved to `into` when it is stored elsewhere (a changed or new
    one was written there already); the result says where it is and where it was."""
    if result.outcome != UNCHANGED or not into:
        return result
    moved = move_elsewhere(store, {document_id(result.key)}, into)
    return replace(result, collection=into, moved_from=moved[0][1] if moved else "")


def move_elsewhere(
    store: KnowledgeStore, document_ids: set[str], into: str
) -> list[tuple[str, str]]:
    """Move those of these documents stored outside `into` there, in one new version;
    (source, the collection it left) of each moved. The stored collections are only
    listed with all the documents: once per run, or per document added from the phone."""
    elsewhere = [d for d in store.documents() if d.id in document_ids and d.collection != into]
    if elsewhere:
        store.move((d.id for d in elsewhere), into)
    return [(d.source, d.collection) for d in elsewhere]


# -- shared by a file on disk and one in memory: compare, parse, report -----------------


class _NotIngested(Exception):
    """A file left out (SKIPPED) or failed (FAILED), with its one-line reason."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def prepare(
    store: KnowledgeStore,
    key: str,
    path: Path,
    data: bytes,
    ocr: Ocr | None,
    deadline: Deadline | None,
    title: str = "",
    placement: Placement = DEFAULT_PLACEMENT,
) -> tuple[FileResult, Document | None]:
    """The file's result and the Document to store (None when there is nothing to store),
    in the collection `placement` gives it: an unchanged file is not parsed again (nor
    moved: the caller does that, for one file or a whole run)."""
    doc_id = document_id(key)
    stored_sha = store.document_sha(doc_id)
    if stored_sha == hashlib.sha256(data).hexdigest():
        return FileResult(key, UNCHANGED, title), None
    try:
        doc = _parse_or_refuse(path, data, doc_id, key, ocr, deadline)
    except _NotIngested as refused:
        return FileResult(key, refused.outcome, title, reason=refused.reason), None
    collection = placement.of(stored_sha is not None, doc.sha256)
    doc = replace(doc, title=title or doc.title, collection=collection)
    return _stored(key, doc, stored_sha), doc


def _stored(key: str, doc: Document, stored_sha: str | None) -> FileResult:
    outcome = ADDED if stored_sha is None else UPDATED
    passages, people = len(doc.chunks), doc.people
    return FileResult(key, outcome, doc.title, passages, people, collection=doc.collection)


def _parse_or_refuse(
    path: Path, data: bytes, doc_id: str, key: str, ocr: Ocr | None, deadline: Deadline | None
) -> Document:
    """`_parse`, its failures turned into _NotIngested with the summary's line."""
    try:
        return _parse(path, data, doc_id, key, ocr, deadline)
    except pdf.NoTextLayer as exc:  # only without OCR
        raise _NotIngested(SKIPPED, f"{exc}; MISTRAL_API_KEY lets ingest read it by OCR") from None
    except ModelFailed as exc:
        raise _NotIngested(FAILED, f"no text layer, and OCR failed ({exc.reason})") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise _NotIngested(FAILED, str(exc)) from None
    except Exception as exc:  # a parser bug must not abort a long ingest run
        logger.exception("unexpected error parsing %s", key)
        raise _NotIngested(FAILED, f"unexpected {type(exc).__name__}: {exc}") from None


def _parse(
    path: Path,
    data: bytes,
    doc_id: str,
    key: str,
    ocr: Ocr | None,
    deadline: Deadline | None,
) -> Document:
    """The file's Document; a PDF without a text layer is read by `ocr` when there is one,
    within `deadline` (OCR_SECONDS from now by default). Raises ParseError (NoTextLayer
    without OCR) or ModelFailed."""
    try:
        return parse_file(path, data, doc_id=doc_id, source=key)
    except pdf.NoTextLayer as scan:
        if ocr is None:
            raise
        logger.info("ingest: %s has no text layer: OCR of %d pages", key, scan.pages)
        pages = ocr.read_pdf(data, scan.pages, deadline or Deadline(OCR_SECONDS))
        return pdf.from_ocr(path, data, scan, pages, doc_id=doc_id, source=key)
