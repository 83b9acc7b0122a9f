"""Load files and folders into a KnowledgeStore: new files added, changed ones replaced."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO

from bot.errors import KnowledgeUnavailable
from bot.knowledge.catalog import stale
from bot.knowledge.formats import max_bytes, supported_suffixes
from bot.knowledge.formats.base import document_id
from bot.knowledge.ingest_file import (
    ADDED,
    DEFAULT_PLACEMENT,
    FAILED,
    SKIPPED,
    UNCHANGED,
    FileResult,
    Placement,
    move_elsewhere,
    prepare,
    too_large,
)
from bot.knowledge.store import Document, KnowledgeStore
from bot.ocr import Ocr

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, file key)
# A store that takes documents in batches (`upsert_many`: the SQLite store with an
# embedder) gets about this many chunks at a time: small files share embedding requests.
BATCH_CHUNKS = 64


@dataclass
class IngestSummary:
    """What one ingest run did; `people` counts distinct names in added/updated files;
    `errors` are the files that failed (and paths that cannot be used), `skipped` the files
    left out for a reason that is not a failure (a scan without OCR), one line each;
    `ignored` counts by suffix the files of other types a folder walk passed over;
    `removed` lists the sources pruned because their files are gone; `moved` the unchanged
    documents moved to `ingest --collection`'s collection, each with the one it left."""

    documents_added: int = 0
    documents_updated: int = 0
    documents_skipped: int = 0
    chunks: int = 0
    people: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest and its key: the root folder's name plus the path below it."""

    path: Path
    key: str


class ProgressBar:
    """A one-line text progress bar (no dependency needed for something this small)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr  # looked up now, so redirected stderr is honoured
        self.width = width

    def __call__(self, done: int, total: int, key: str) -> None:
        filled = self.width * done // max(total, 1)
        name = key if len(key) <= 40 else "…" + key[-39:]
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} {name:<40}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _key(root: Path, path: Path) -> str:
    # The root's own name is part of the key, so a/notes.md and b/notes.md stay distinct,
    # and ingesting "sample/" or "sample/x.md" gives x.md the same id either way.
    return "/".join([root.resolve().name, *path.relative_to(root).parts])


class Found(NamedTuple):
    """What `discover` found: the files to read, an error line per path that cannot be used,
    and how many files of each unsupported suffix the folder walks passed over."""

    files: list[SourceFile]
    errors: list[str]
    ignored: dict[str, int]


def discover(paths: Iterable[str]) -> Found:
    """Supported files under `paths` (folders walked recursively, hidden entries skipped)
    in a stable order; a path given that cannot be read is an error, a file of another type
    met in a folder is only counted (a folder of notes often holds images too)."""
    suffixes = supported_suffixes()
    files: dict[str, SourceFile] = {}
    errors: list[str] = []
    ignored: Counter[str] = Counter()
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            if root.suffix.lower() in suffixes:
                files.setdefault(key := _key(root.parent, root), SourceFile(root, key))
            else:
                errors.append(f"{raw}: unsupported file type {root.suffix or '(none)'}")
        elif root.is_dir():
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    path = Path(folder, name)
                    if name.startswith("."):
                        continue
                    if path.suffix.lower() not in suffixes:
                        ignored[path.suffix.lower() or "(no suffix)"] += 1
                        continue
                    files.setdefault(key := _key(root, path), SourceFile(path, key))
        else:
            errors.append(f"{raw}: no such file or directory")
    return Found(list(files.values()), errors, dict(sorted(ignored.items())))


def _progress_callback(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    if callable(progress):
        return progress
    if progress is None:
        progress = sys.stderr.isatty()
    return ProgressBar() if progress else None


def ingest_paths(
    store: KnowledgeStore,
    paths: list[str],
    progress: bool | ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    prune: bool = False,
    ocr: Ocr | None = None,
    placement: Placement = DEFAULT_PLACEMENT,
) -> IngestSummary:
    """Ingest files and folders; unchanged files are skipped, changed ones replaced.

    `progress`: None shows a bar on stderr when it is a terminal, True always, False
    never, or a callable(done, total, key). A file that cannot be read or parsed becomes
    an error line, and nothing of it is stored; a store failure (KnowledgeUnavailable)
    stops the run. `clock` times the run (tests pass their own). `prune` also removes the
    stored documents that came from the given folders (the same folder key) whose files
    are gone. `ocr` reads PDFs without a text layer; without it they are skipped.
    `placement` chooses the documents' collection; with `placement.into`, unchanged ones
    stored in another collection move there too. When anything was stored or removed, a
    store that can (SQLite) merges its full-text index."""
    started = clock()
    summary = IngestSummary()
    files, summary.errors, summary.ignored = discover(paths)
    if files:
        placement = placement.knowing(store.documents())
    report = _progress_callback(progress)
    people: set[str] = set()
    batch = _Batch(store)
    unchanged: set[str] = set()  # document ids, for `placement.into`
    for done, source in enumerate(files, start=1):
        if _ingest_one(store, source, summary, people, batch, ocr, placement) == UNCHANGED:
            unchanged.add(document_id(source.key))
        if report:
            report(done, len(files), source.key)
    batch.flush()
    summary.people = len(people)
    if placement.into and unchanged:
        summary.moved = move_elsewhere(store, unchanged, placement.into)
    if prune:
        folders = [Path(raw).resolve().name for raw in paths if Path(raw).is_dir()]
        gone = stale(store.documents(), folders, {source.key for source in files})
        if gone:
            store.remove(d.id for d in gone)
        summary.removed = [d.source for d in gone]
    optimize = getattr(store, "optimize", None)  # the SQLite store's; others need none
    if optimize is not None and (batch.stored or summary.removed):
        try:
            optimize()
        except KnowledgeUnavailable as exc:  # every document is stored by now: no failure
            logger.warning("ingest: index merge skipped (%s); the next ingest merges it", exc)
    summary.seconds = clock() - started
    logger.info(
        "ingest: %d added, %d updated, %d unchanged, %d removed, %d chunks, %d errors, "
        "%d skipped in %.2fs",
        summary.documents_added,
        summary.documents_updated,
        summary.documents_skipped,
        len(summary.removed),
        summary.chunks,
        len(summary.errors),
        len(summary.skipped),
        summary.seconds,
    )
    return summary


class _Batch:
    """Parsed documents on their way to the store: one by one, or in batches of about
    BATCH_CHUNKS chunks when the store takes them (a failure still stops the run)."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self.upsert_many = getattr(store, "upsert_many", None)
        self.docs: list[Document] = []
        self.stored = 0

    def add(self, doc: Document) -> None:
        self.stored += 1
        if self.upsert_many is None:
            self.store.upsert(doc)
            return
        self.docs.append(doc)
        if sum(len(d.chunks) for d in self.docs) >= BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if self.docs and self.upsert_many is not None:
            self.upsert_many(self.docs)
        self.docs = []


def _ingest_one(
    store: KnowledgeStore,
    source: SourceFile,
    summary: IngestSummary,
    people: set[str],
    batch: _Batch,
    ocr: Ocr | None,
    placement: Placement,
) -> str:
    """Read, compare and parse one file into the batch; its outcome."""
    limit = max_bytes(source.path)
    try:
        if limit is not None and (size := source.path.stat().st_size) > limit:
            summary.errors.append(f"{source.key}: {too_large(size, limit)}")
            return FAILED
        data = source.path.read_bytes()
    except OSError as exc:
        summary.errors.append(f"{source.key}: cannot read ({exc.strerror or exc})")
        return FAILED
    result, doc = prepare(store, source.key, source.path, data, ocr, None, placement=placement)
    if doc is not None:
        batch.add(doc)
    _count(summary, people, result)
    return result.outcome


def _count(summary: IngestSummary, people: set[str], result: FileResult) -> None:
    """Add one file's result to the run's summary."""
    if result.outcome == UNCHANGED:
        summary.documents_skipped += 1
    elif result.outcome == FAILED:
        summary.errors.append(f"{result.key}: {result.reason}")
    elif result.outcome == SKIPPED:
        summary.skipped.append(f"{result.key}: {result.reason}")
    else:
        if result.outcome == ADDED:
            summary.documents_added += 1
        else:
            summary.documents_updated += 1
        summary.chunks += result.passages
        people.update(p.lower() for p in result.people)
