"""Documents from the phone: an admin sends a PDF, Word, text or Markdown file with the
caption "@agent add" (or "add", optionally followed by a title), and it is ingested as
`flask ingest` would ingest it (bot/knowledge/ingest.py's `ingest_file`). Anyone else gets
a short refusal, and nothing is downloaded or stored.

Keys and titles. Twilio does not pass on a WhatsApp document's file name reliably, so a
document's key (its stored source, from which its id derives) comes from its title:
- A title in the caption ("@agent add Board minutes March") is the document's title, and
  its key is "whatsapp/board-minutes-march" whatever the file's format. Sending the same
  file again changes nothing (same key, same sha256: not even parsed again), and a changed
  file sent with the same title replaces the earlier version.
- Without one, the title is the one the document gives itself (a PDF's Title, a `Title:`
  line, a first heading, Word's Title), else its first line when that is short, keyed the
  same way. Two different documents calling themselves alike replace each other: the reply
  then says "Updated", so the admin sees it, and a caption title keeps them apart.
- A document that names itself nowhere is "WhatsApp document <date>", keyed by its
  content's hash: sending it again changes nothing, and two of them never collide.

Collections (bot/readers.py). "@agent add #board Board minutes March" puts the document in
"board" (bot/chat/captions.py reads the caption); without "#name" a new document goes to
`knowledge.default_collection` and a stored one stays where it is, as with `ingest`. Once
`knowledge.collections` is set, a "#name" it does not list is refused before anything is
downloaded, and the reply names the document's collection (bot/chat/add_replies.py).

Time. The ingest runs on a thread of its own, and the reply waits for it while the
request's Deadline (less REPLY_RESERVE_SECONDS for the reply itself) allows. When it cannot
finish in time (a long PDF, OCR), the reply says it is being added, and the outcome is told
with the admin's next reply, in whichever worker that lands (bot/chat/add_outcomes.py).
Every add changes the knowledge base's version, so the answer cache serves nothing older.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.chat.access import AccessPolicy
from bot.chat.add_outcomes import AddOutcomes
from bot.chat.add_replies import collection_refusal, download_failed_text, outcome_text
from bot.chat.captions import AddRequest, add_request, slug
from bot.chat.media import MediaSource
from bot.deadline import Deadline
from bot.errors import KnowledgeUnavailable, MediaUnavailable
from bot.knowledge.formats.base import document_id
from bot.knowledge.ingest_file import (
    ADDED,
    OCR_SECONDS,
    UNCHANGED,
    UPDATED,
    FileResult,
    Placement,
    ingest_file,
    ingest_named,
)
from bot.knowledge.store import Document, KnowledgeStore
from bot.media import MediaFile, kind_of
from bot.media.kinds import DOCX
from bot.models import InboundMessage, Reply
from bot.ocr import Ocr
from bot.settings import Settings
from bot.text import mask_number
from bot.texts import (
    DOCUMENT_ADDING,
    DOCUMENT_FAILED,
    DOCUMENT_HINT,
    DOCUMENT_REFUSED,
    DOCUMENT_STORE_DOWN,
    DOCUMENT_UNSUPPORTED,
    SOME_DOCUMENT,
    UNTITLED_DOCUMENT,
)

logger = logging.getLogger(__name__)

# Kept back from the ingest for storing the exchange and writing the TwiML.
REPLY_RESERVE_SECONDS = 1.0
# Adds running at once in one process (each holds its file, up to 20 MB, and its parse).
PARALLEL_ADDS = 2
KEY_FOLDER = "whatsapp"  # every key starts "whatsapp/": where a document came from
FIRST_LINE_CHARS = 80  # a longer first line is a sentence, not a title
# The file name suffix that chooses the format, by the content type Twilio passes on.
SUFFIXES = {
    "application/pdf": ".pdf",
    DOCX: ".docx",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
}


@dataclass
class _Job:
    """One add on its own thread: its reply text once done, unless it was handed off."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    text: str | None = None
    handed_off: bool = False  # the reply went out first: the outcome goes to AddOutcomes
    job_id: str = ""  # its id in AddOutcomes, once handed off


@dataclass
class DocumentInbox:
    """MediaInbox's "document" route: `inbox(message, deadline) -> Reply`."""

    settings: Settings
    knowledge: KnowledgeStore
    media: MediaSource
    outcomes: AddOutcomes
    ocr: Ocr | None = None  # reads scanned PDFs; without it they are not added
    clock: Callable[[], float] = time.time  # dates an untitled document

    def __post_init__(self) -> None:
        self.access = AccessPolicy(self.settings)
        self._trigger = self.settings.trigger_words[0]
        self._slots = threading.BoundedSemaphore(PARALLEL_ADDS)
        self._threads: list[threading.Thread] = []  # for `wait`
        self._threads_lock = threading.Lock()

    def __call__(self, msg: InboundMessage, deadline: Deadline) -> Reply | None:
        """Refuse, hint, or download and add the message's document within `deadline`.
        MediaInbox also hands over other attachments with a caption: None unless that
        caption asks to add (a photo with a question is answered as its text)."""
        request = add_request(msg.body, self.settings.trigger_words)
        addable = bool(msg.media_types) and kind_of(msg.media_types[0]) is not None
        if not addable and request is None:
            return None
        if not self.access.is_admin(msg.sender):
            logger.info("document from %s refused: not an admin", mask_number(msg.sender))
            return Reply(DOCUMENT_REFUSED, kind="document")
        if request is None:
            return Reply(DOCUMENT_HINT.format(trigger=self._trigger), kind="hint")
        if not addable:  # a spreadsheet, a photo, an old .doc: nothing is downloaded
            return Reply(DOCUMENT_UNSUPPORTED, kind="document")
        if refusal := collection_refusal(self.settings.readers, request.collection):
            return Reply(refusal, kind="document")  # refused before anything is downloaded
        try:
            if not msg.media_urls:
                raise MediaUnavailable("no media url")
            file = self.media.fetch(
                msg.media_urls[0], msg.media_types[0], deadline.child(reserve=REPLY_RESERVE_SECONDS)
            )
        except MediaUnavailable as exc:
            logger.warning("document from %s not downloaded: %s", mask_number(msg.sender), exc)
            return Reply(download_failed_text(exc.reason), kind="document")
        return Reply(self._add(msg.sender, file, request, deadline), kind="document")

    def wait(self, seconds: float) -> bool:
        """Wait for the adds still running in this process; True when none is left."""
        end = time.monotonic() + seconds
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            return not self._threads

    def _add(self, sender: str, file: MediaFile, request: AddRequest, deadline: Deadline) -> str:
        """The reply: the outcome when the add ends in time, else that it goes on."""
        job = _Job()
        thread = threading.Thread(
            target=self._run, args=(job, sender, file, request), name="add-document", daemon=True
        )
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        job.done.wait(max(0.0, deadline.remaining() - REPLY_RESERVE_SECONDS))
        with job.lock:
            if job.text is not None:
                return job.text
            job.handed_off, job.job_id = True, self.outcomes.new_job()
            shown = request.title or SOME_DOCUMENT
            try:
                self.outcomes.started(sender, job.job_id, shown)
            except OSError:
                logger.exception("cannot record a pending add")
        logger.info("adding a document for %s in the background", mask_number(sender))
        return DOCUMENT_ADDING.format(title=shown)

    def _run(self, job: _Job, sender: str, file: MediaFile, request: AddRequest) -> None:
        """The thread: add the document, then hand its outcome to the reply or the outcomes."""
        text = self._outcome(file, request)
        with job.lock:
            if not job.handed_off:
                job.text = text
                job.done.set()
                return
        try:
            self.outcomes.finished(sender, job.job_id, text)
        except OSError:
            logger.exception("cannot record the outcome of an add")

    def _outcome(self, file: MediaFile, request: AddRequest) -> str:
        """Ingest the file (at most PARALLEL_ADDS at once) and say how it went."""
        title = request.title
        with self._slots:
            started = time.monotonic()
            try:
                result = self._ingest(file, request)
            except KnowledgeUnavailable as exc:
                logger.warning("document not added: knowledge unavailable (%s)", exc)
                return DOCUMENT_STORE_DOWN.format(title=title or SOME_DOCUMENT)
            except Exception as exc:  # a thread must end with an outcome to tell
                logger.exception("unexpected error adding a document")
                reason = f"unexpected {type(exc).__name__}"
                return DOCUMENT_FAILED.format(title=title or SOME_DOCUMENT, reason=reason)
        logger.info(
            "document %s: %s (%s, %d bytes, %d passages) in %.1f s",
            result.key,
            result.outcome,
            file.content_type,
            len(file.data),
            result.passages,
            time.monotonic() - started,
        )
        return outcome_text(result, title, self._collection_shown(result, request))

    def _ingest(self, file: MediaFile, request: AddRequest) -> FileResult:
        """`ingest_file` under the caption title's key, or keyed by what the file says, in
        the caption's collection or (a new document) the default one."""
        suffix = SUFFIXES[file.content_type]
        deadline = Deadline(OCR_SECONDS)  # the add may outlive the request's deadline
        placement = Placement(request.collection, self.settings.knowledge_default_collection)
        placement = placement.knowing(self.knowledge.documents())
        if request.title and (key := slug(request.title)):
            return ingest_file(
                self.knowledge,
                f"{KEY_FOLDER}/{key}",
                file.data,
                name=key + suffix,
                title=request.title,
                ocr=self.ocr,
                deadline=deadline,
                placement=placement,
            )
        return ingest_named(
            self.knowledge,
            "document" + suffix,
            file.data,
            self._name,
            ocr=self.ocr,
            deadline=deadline,
            placement=placement,
        )

    def _collection_shown(self, result: FileResult, request: AddRequest) -> str:
        """The collection the reply names: the document's, once collections restrict who
        reads what or the caption named one; "" otherwise (the reply as before)."""
        stored = result.outcome in (ADDED, UPDATED, UNCHANGED)
        if not stored or not (self.settings.readers.configured or request.collection):
            return ""
        if result.collection:
            return result.collection
        # A stored document kept its collection: which one is only listed with them all.
        doc_id = document_id(result.key)
        try:
            return next((d.collection for d in self.knowledge.documents() if d.id == doc_id), "")
        except KnowledgeUnavailable:  # it is stored: say so, without the collection
            return ""

    def _name(self, doc: Document, own_title: str) -> tuple[str, str]:
        """(key, title) of a document sent without a caption title (see the module's doc)."""
        title = own_title or _first_line(doc)
        if title and (key := slug(title)):
            return f"{KEY_FOLDER}/{key}", title
        date = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date().isoformat()
        return f"{KEY_FOLDER}/untitled-{doc.sha256[:16]}", UNTITLED_DOCUMENT.format(date=date)


def _first_line(doc: Document) -> str:
    """The document's first line of text, when short enough to be a title."""
    text = doc.chunks[0].text if doc.chunks else ""
    line = next((" ".join(line.split()) for line in text.split("\n") if line.strip()), "")
    return line.strip("#*_ ") if len(line) <= FIRST_LINE_CHARS else ""
