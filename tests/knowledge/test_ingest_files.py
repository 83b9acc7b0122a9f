"""`flask --app app ingest` with PDF and Word files, through the real SQLite store: passages
name their page or heading, scans are read by OCR (the Mistral stand-in) or skipped by name,
protected and broken files fail by name with exit code 1 and store nothing."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.deadline import Deadline
from bot.knowledge import formats
from bot.knowledge.ingest import ingest_paths
from tests.support import API_KEY, tree


@pytest.fixture
def cli(make_app):
    """Factory: a CLI runner on an app without knowledge (settings as keyword overrides)."""

    def build(**overrides):
        app = make_app(ingest=False, **overrides)
        return app, app.test_cli_runner()

    return build


def sources(app, question: str) -> list[str]:
    passages = app.extensions["bot"].knowledge.search(question, 3, Deadline(5))
    return [p.source for p in passages]


def stored(app) -> list[str]:
    return [d.source for d in app.extensions["bot"].knowledge.documents()]


def test_passages_name_the_pdf_page_and_the_word_heading(cli, office_folder) -> None:
    app, runner = cli()
    folder = office_folder("docs", "board-minutes-march.pdf", "strategy-review.docx")
    result = runner.invoke(args=["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Ingested 2 new and 0 changed documents (7 chunks, 2 people)")
    searched = runner.invoke(args=["search", "--json", "budget for the Nairobi office"])
    top = json.loads(searched.output)["passages"][0]
    assert top["source"] == "Board minutes March, p. 2" and "40,000 euros" in top["text"]
    assert sources(app, "who recruits the engineers?")[0] == "Board minutes March, p. 3"
    assert sources(app, "travel budget for Kisumu")[0] == "Strategy review, Budget"
    assert sources(app, "Mombasa cooperative agreement")[0] == "Strategy review, Partners"


def test_a_scan_without_a_key_is_skipped_by_name(cli, office_folder) -> None:
    app, runner = cli()
    result = runner.invoke(args=["ingest", str(office_folder("docs", "scanned-receipts.pdf"))])
    assert result.exit_code == 0, result.output  # skipped, not failed
    assert result.output.splitlines() == [
        "Ingested 0 new and 0 changed documents (0 chunks, 0 people); 0 unchanged skipped; 0.0 s.",
        "skipped: docs/scanned-receipts.pdf: no text layer (a scanned PDF?); MISTRAL_API_KEY "
        "lets ingest read it by OCR",
    ]
    assert stored(app) == []


def test_a_scan_is_read_by_ocr_with_a_key(cli, office_folder, office_files, mistral) -> None:
    app, runner = cli(mistral_api_key=API_KEY, mistral_server_url=mistral.url)
    mistral.ocr_pages = ["# Receipts March\n\nTaxi to the airport: 40 euros.", "Hotel in Kisumu."]
    result = runner.invoke(args=["ingest", str(office_folder("docs", "scanned-receipts.pdf"))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Ingested 1 new and 0 changed documents (2 chunks")
    (request,) = mistral.ocr_requests
    encoded = base64.b64encode(office_files["scanned-receipts.pdf"]).decode()
    assert request["document"] == {
        "type": "document_url",
        "document_url": f"data:application/pdf;base64,{encoded}",
    }
    assert request["model"] == "mistral-ocr-latest"
    assert sources(app, "hotel in Kisumu")[0] == "Receipts March, p. 2"
    again = runner.invoke(args=["ingest", str(office_folder("docs", "scanned-receipts.pdf"))])
    assert "1 unchanged skipped" in again.output and len(mistral.ocr_requests) == 1


def test_a_failed_ocr_is_an_error_and_stores_nothing(cli, office_folder, mistral) -> None:
    app, runner = cli(mistral_api_key=API_KEY, mistral_server_url=mistral.url)
    mistral.statuses = [422]  # not retried
    result = runner.invoke(args=["ingest", str(office_folder("docs", "scanned-receipts.pdf"))])
    assert result.exit_code == 1
    assert "error: docs/scanned-receipts.pdf: no text layer, and OCR failed (http 422)" in (
        result.stderr
    )
    assert stored(app) == []


def test_protected_and_broken_files_fail_by_name_and_store_nothing(cli, office_folder) -> None:
    app, runner = cli()
    result = runner.invoke(args=["ingest", str(office_folder())])  # every file, the scan too
    assert result.exit_code == 1
    assert result.stdout.startswith("Ingested 2 new and 0 changed documents")
    assert "skipped: docs/scanned-receipts.pdf: no text layer" in result.stdout
    assert result.stderr.splitlines() == [
        "error: docs/broken.docx: not a Word .docx file (not a zip archive)",
        "error: docs/locked.pdf: password-protected: remove the password and ingest it again",
        "error: docs/truncated.pdf: not a readable PDF (Stream has ended unexpectedly)",
    ]
    assert stored(app) == ["docs/board-minutes-march.pdf", "docs/strategy-review.docx"]


def test_a_file_broken_since_its_last_ingest_keeps_its_stored_version(
    cli, office_folder, office_files
) -> None:
    app, runner = cli()
    folder = office_folder("docs", "board-minutes-march.pdf")
    assert runner.invoke(args=["ingest", str(folder)]).exit_code == 0
    (folder / "board-minutes-march.pdf").write_bytes(office_files["truncated.pdf"])
    result = runner.invoke(args=["ingest", str(folder)])
    assert result.exit_code == 1 and "docs/board-minutes-march.pdf: not a readable PDF" in (
        result.stderr
    )
    assert sources(app, "budget for the Nairobi office")[0] == "Board minutes March, p. 2"


def test_files_a_folder_walk_cannot_read_are_counted_by_type(cli, tmp_path: Path) -> None:
    _, runner = cli()
    folder = tree(tmp_path / "photos", {"a.png": b"\x89PNG", "b.png": b"\x89PNG", "c.zip": b"PK"})
    result = runner.invoke(args=["ingest", str(folder)])
    assert result.exit_code == 0
    assert result.output.splitlines()[1:] == [
        "Ignored 3 file(s) of types ingest does not read: .png (2), .zip (1)."
    ]


def test_a_path_given_that_cannot_be_read_fails_by_name(cli, tmp_path: Path) -> None:
    _, runner = cli()
    slides = tree(tmp_path, {"slides.pptx": b"PK\x03\x04"}) / "slides.pptx"
    result = runner.invoke(args=["ingest", str(slides)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {slides}: unsupported file type .pptx\n"


def test_a_file_over_its_format_limit_is_refused_before_it_is_read(
    store, office_folder, office_files, monkeypatch
) -> None:
    limited = [replace(f, max_bytes=1000) if f.name == "pdf" else f for f in formats.formats()]
    monkeypatch.setattr(formats, "_FORMATS", limited)
    summary = ingest_paths(store, [str(office_folder("docs", "board-minutes-march.pdf"))])
    size = len(office_files["board-minutes-march.pdf"])
    assert summary.errors == [
        f"docs/board-minutes-march.pdf: too large ({size:,} bytes; the limit is 1,000 bytes)"
    ]
    assert store.counts()["documents"] == 0


class PageOcr:
    """An Ocr that reads "Page N" on every page, and remembers what it was asked."""

    name = "pages"

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int]] = []

    def read_pdf(self, data: bytes, pages: int, deadline: Deadline) -> list[str]:
        self.calls.append((data, pages))
        return [f"Page {n} of the scanned receipts." for n in range(1, pages + 1)]

    def close(self) -> None:
        pass


def test_ingest_hands_a_scan_and_its_page_count_to_the_ocr(
    store, office_folder, office_files
) -> None:
    ocr = PageOcr()
    summary = ingest_paths(store, [str(office_folder("docs"))], progress=False, ocr=ocr)
    assert ocr.calls == [(office_files["scanned-receipts.pdf"], 2)]
    assert summary.skipped == [] and summary.documents_added == 3
    passages = store.search("scanned receipts page", 5, Deadline(5))
    assert {p.source for p in passages} == {"Scanned receipts, p. 1", "Scanned receipts, p. 2"}
