"""One file held in memory (a document sent to the bot), ingested by `ingest_file` and
`ingest_named` through the same size check, parse, OCR and store path as `ingest_paths`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.errors import ModelFailed
from bot.knowledge import ingest_file as one_file
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.ingest_file import (
    ADDED,
    FAILED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    FileResult,
    ingest_file,
    ingest_named,
)
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from tests.office_files import pdf_bytes

KEY = "docs/board-minutes-march.pdf"


class PagesOcr:
    """An Ocr that reads every page as the same text, or fails; records its deadlines."""

    name = "pages"

    def __init__(self, text: str = "", fails: bool = False) -> None:
        self.text, self.fails = text, fails
        self.deadlines: list[Deadline] = []

    def read_pdf(self, data: bytes, pages: int, deadline: Deadline) -> list[str]:
        self.deadlines.append(deadline)
        if self.fails:
            raise ModelFailed("http 422")
        return [self.text] * pages

    def close(self) -> None:
        pass


def listing(store) -> list[tuple]:
    return [(d.id, d.title, d.source, d.kind, d.date, d.chunks) for d in store.documents()]


def test_a_file_in_memory_is_stored_exactly_as_the_cli_stores_it(
    store, tmp_path: Path, office_folder
) -> None:
    folder = office_folder("docs", "board-minutes-march.pdf")
    on_disk = SqliteKnowledgeStore(str(tmp_path / "cli.sqlite3"))
    try:
        ingest_paths(on_disk, [str(folder)], progress=False)
        data = (folder / "board-minutes-march.pdf").read_bytes()
        result = ingest_file(store, KEY, data)
        people = ("Amara Okafor", "Jonas Weber")
        added = FileResult(KEY, ADDED, "Board minutes March", 3, people, collection="general")
        assert result == added
        assert listing(store) == listing(on_disk)
        question = "budget for the Nairobi office"
        assert store.search(question, 3, Deadline(5)) == on_disk.search(question, 3, Deadline(5))
    finally:
        on_disk.close()


def test_unchanged_is_not_parsed_again_and_changed_replaces(
    store, office_files, monkeypatch
) -> None:
    minutes = office_files["board-minutes-march.pdf"]
    ingest_file(store, "whatsapp/minutes", minutes, name="minutes.pdf", title="Minutes")
    version = store.version()

    def no_parse(*args, **kwargs):
        raise AssertionError("an unchanged file was parsed")

    with monkeypatch.context() as patched:
        patched.setattr(one_file, "parse_file", no_parse)
        again = ingest_file(store, "whatsapp/minutes", minutes, name="minutes.pdf", title="Minutes")
    assert (again.outcome, again.title, store.version()) == (UNCHANGED, "Minutes", version)
    changed = pdf_bytes([["The board met again."]])
    result = ingest_file(store, "whatsapp/minutes", changed, name="minutes.pdf", title="Minutes")
    assert (result.outcome, result.passages) == (UPDATED, 1)
    assert [(d.title, d.chunks) for d in store.documents()] == [("Minutes", 1)]
    assert store.version() != version


def test_too_large_scans_without_ocr_and_broken_files_store_nothing(
    store, office_files, monkeypatch
) -> None:
    minutes = office_files["board-minutes-march.pdf"]
    scan = office_files["scanned-receipts.pdf"]
    assert ingest_file(store, "a.pdf", office_files["locked.pdf"]).reason == (
        "password-protected: remove the password and ingest it again"
    )
    assert ingest_file(store, "b.pdf", office_files["truncated.pdf"]).outcome == FAILED
    skipped = ingest_file(store, "c.pdf", scan)
    assert (skipped.outcome, skipped.reason) == (
        SKIPPED,
        "no text layer (a scanned PDF?); MISTRAL_API_KEY lets ingest read it by OCR",
    )
    failed = ingest_file(store, "d.pdf", scan, ocr=PagesOcr(fails=True))
    assert failed.reason == "no text layer, and OCR failed (http 422)"
    monkeypatch.setattr(one_file, "max_bytes", lambda path: 100)
    too_large = ingest_file(store, "e.pdf", minutes)
    assert (too_large.outcome, too_large.reason) == (
        FAILED,
        f"too large ({len(minutes):,} bytes; the limit is 100 bytes)",
    )
    assert store.documents() == []


def test_a_scan_is_read_by_ocr_within_the_deadline_given(store, office_files) -> None:
    ocr, deadline = PagesOcr("# Receipts\n\nTaxi: 40 euros."), Deadline(30)
    result = ingest_file(
        store, "r.pdf", office_files["scanned-receipts.pdf"], ocr=ocr, deadline=deadline
    )
    assert (result.outcome, result.title, result.passages) == (ADDED, "Receipts", 2)
    assert ocr.deadlines == [deadline]


@pytest.mark.parametrize(
    ("name", "data", "own_title"),
    [
        ("d.pdf", "board-minutes-march.pdf", "Board minutes March"),
        ("d.docx", "strategy-review.docx", "Strategy review"),
        ("d.txt", b"Title: Budget call\nWe met.", "Budget call"),
        ("d.md", b"# Logo decisions\n\nGreen.", "Logo decisions"),
        ("d.txt", b"We met and agreed.", ""),  # the parser's fallback is the file name
    ],
)
def test_a_named_file_is_keyed_by_the_title_it_gives_itself(
    store, office_files, name, data, own_title
) -> None:
    seen = []

    def naming(doc, title):
        seen.append(title)
        return "whatsapp/" + (title or "untitled"), title or "Untitled"

    content = office_files[data] if isinstance(data, str) else data
    result = ingest_named(store, name, content, naming)
    assert seen == [own_title] and result.outcome == ADDED
    [stored] = store.documents()
    assert (stored.source, stored.title) == (result.key, own_title or "Untitled")
    assert ingest_named(store, name, content, naming).outcome == UNCHANGED
