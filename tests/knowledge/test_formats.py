"""Parsers: plain text, Markdown, `Speaker: text` transcripts, QMSum JSON, the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.knowledge import formats
from bot.knowledge.formats import Format, ParseError, find_format, parse_file
from bot.knowledge.formats.base import make_document, parse_date

TRANSCRIPT = """# UNEA preparation meeting

Date: 2026-03-04
Attendees: Amara Okafor (chair), Jonas Weber, Priya Raman, Tom Fletcher
Apologies: Sofia Mendes

Amara: Welcome everyone, let's start with the resolutions.
Jonas Weber: The EU position is not settled yet.
It may take until April.
Priya Raman: I will draft the brief.
Amara: Thanks, that settles it.
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def parse(path: Path):
    return parse_file(path, path.read_bytes())


def all_text(doc) -> str:
    return "\n".join(c.text for c in doc.chunks)


def test_plain_text_title_from_title_line_and_date_from_date_line(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "Title: Budget review\nDate: 4 March 2026\n\nWe met.")
    doc = parse(path)
    assert (doc.title, doc.date, doc.kind) == ("Budget review", "2026-03-04", "text")
    assert "We met." in all_text(doc)
    assert doc.source == "notes.txt" and len(doc.sha256) == 64


def test_plain_text_without_header_uses_the_humanised_file_name(tmp_path: Path) -> None:
    doc = parse(write(tmp_path, "2026-01-05_board-call_notes.txt", "Short notes only."))
    assert doc.title == "Board call notes"
    assert doc.date == "2026-01-05"  # from the file name


def test_plain_text_without_any_date_has_an_empty_date(tmp_path: Path) -> None:
    assert parse(write(tmp_path, "ideas.txt", "Nothing dated here.")).date == ""


def test_markdown_title_from_first_heading_and_markup_stripped(tmp_path: Path) -> None:
    text = (
        "# UK engagement *timeline*\n\nDate: 2026-03-10\n\n## Milestones\n\n"
        "- **2026-06-10**: briefing, see [the plan](https://example.org/plan).\n"
        "<!-- internal comment -->\n```\ncode stays\n```\n"
    )
    doc = parse(write(tmp_path, "timeline.md", text))
    body = all_text(doc)
    assert doc.title == "UK engagement timeline"
    assert (doc.kind, doc.date) == ("markdown", "2026-03-10")
    assert "Milestones" in body and "the plan" in body and "code stays" in body
    for markup in ("#", "**", "](", "<!--", "```", "internal comment"):
        assert markup not in body


def test_markdown_front_matter_gives_title_and_date(tmp_path: Path) -> None:
    text = "---\ntitle: Handbook\ndate: 2026-01-12\n---\nSome handbook text."
    doc = parse(write(tmp_path, "handbook.md", text))
    assert (doc.title, doc.date) == ("Handbook", "2026-01-12")


def test_transcript_is_detected_and_keeps_speaker_turns(tmp_path: Path) -> None:
    path = write(tmp_path, "unea.md", TRANSCRIPT)
    assert find_format(path, path.read_bytes()).name == "transcript"
    doc = parse(path)
    body = all_text(doc)
    assert (doc.kind, doc.title, doc.date) == (
        "transcript",
        "UNEA preparation meeting",
        "2026-03-04",
    )
    assert "Jonas Weber: The EU position is not settled yet.\nIt may take until April." in body
    assert "Priya Raman: I will draft the brief." in body
    speakers = {s for c in doc.chunks for s in c.speakers}
    assert speakers == {"Amara", "Jonas Weber", "Priya Raman"}  # header lines are not turns


def test_transcript_attendees_become_people_but_apologies_do_not(tmp_path: Path) -> None:
    doc = parse(write(tmp_path, "unea.md", TRANSCRIPT))
    # "Amara" speaks under her first name: she is the attendee Amara Okafor, not a new person.
    assert doc.people == ("Amara Okafor", "Jonas Weber", "Priya Raman", "Tom Fletcher")
    assert "Attendees: Amara Okafor (chair), Jonas Weber" in doc.chunks[0].text


def test_transcript_in_plain_text_with_timestamps_and_bold_names(tmp_path: Path) -> None:
    txt = "[00:00:05] Grad A: OK, we're on.\n[00:00:09] Grad E: Check one.\n00:01 Grad A: Good.\n"
    doc = parse(write(tmp_path, "call.txt", txt))
    assert doc.kind == "transcript" and doc.chunks[0].speakers == ("Grad A", "Grad E")
    md = "**Tom:** Hello there.\n\n**Lena:** Hi Tom.\n\n**Tom:** Shall we start?\n"
    doc = parse(write(tmp_path, "call.md", md))
    assert doc.kind == "transcript" and "Tom: Shall we start?" in all_text(doc)


@pytest.mark.parametrize(
    "text",
    [
        # A glossary: capitalised terms with colons, each used once.
        "Capacity: staff time available.\nFunding: grants and donations.\nImpact: change.\n",
        # Meeting notes whose `Key: value` lines are header fields, not people.
        "Date: 2026-02-18\nAttendees: A B\nAgenda: budget\nDecision: keep Kenya\nNote: ok\n",
        # Links and lower-case labels are not speakers.
        "See https://example.org: the plan\nsource: https://a.b\nsource: https://c.d\n",
        # Prose that merely contains a colon.
        "We agreed on three things: budget, staff and travel.\nThe rest: later.\nMore prose.\n",
    ],
)
def test_non_transcripts_are_not_taken_for_transcripts(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "notes.txt", text)
    assert find_format(path, path.read_bytes()).name == "text"
    assert parse(path).chunks[0].speakers == ()


def qmsum_payload() -> dict:
    return {
        "topic_list": [{"topic": "Remote control", "relevant_text_span": [["0", "1"]]}],
        "general_query_list": [{"query": "Summarise", "answer": "SECRET-ANSWER-TEXT"}],
        "specific_query_list": [],
        "meeting_transcripts": [
            {"speaker": "Project Manager", "content": "Let 's  start the  meeting ."},
            {"speaker": "Marketing", "content": "I looked at the market research ."},
            {"speaker": "Project Manager", "content": "Good , thanks ."},
        ],
    }


def test_qmsum_json_keeps_turns_and_ignores_the_answers(tmp_path: Path) -> None:
    doc = parse(write(tmp_path, "ES2006a.json", json.dumps(qmsum_payload())))
    body = all_text(doc)
    assert (doc.kind, doc.title, doc.date) == ("transcript", "ES2006a", "")
    assert body.startswith("Project Manager: Let 's start the meeting .\nMarketing: I looked")
    assert doc.people == ("Project Manager", "Marketing")
    assert "SECRET-ANSWER-TEXT" not in body and "Summarise" not in body


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bad.json", b'{"meeting_transcripts": [', "invalid JSON"),
        ("odd.json", b'{"meeting_transcripts": {"a": 1}}', "meeting_transcripts"),
        ("other.json", b'{"name": "package"}', "unsupported"),
        ("binary.txt", b"\x00\x01\x02binary", "binary"),
        ("empty.md", b"   \n\n", "no text"),
        ("notes.pdf", b"%PDF-1.4", "not a readable PDF"),
        ("slides.pptx", b"PK\x03\x04", "unsupported"),
    ],
)
def test_unparseable_files_raise_parse_error(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse(write(tmp_path, name, data))


def test_decoding_handles_utf16_and_windows_1252(tmp_path: Path) -> None:
    doc = parse(write(tmp_path, "u16.txt", "Réunion à Genève.".encode("utf-16")))
    assert "Réunion à Genève." in all_text(doc)
    doc = parse(write(tmp_path, "cp.txt", "Caf\xe9 \x93quoted\x94".encode("latin-1")))
    assert "Café “quoted”" in all_text(doc)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-03-04", "2026-03-04"),
        ("Wednesday 4th March 2026", "2026-03-04"),
        ("March 4, 2026", "2026-03-04"),
        ("04/03/2026", "2026-03-04"),  # day first, as in WhatsApp exports
        ("2026-02-30", ""),
        ("no date", ""),
    ],
)
def test_parse_date(text: str, iso: str) -> None:
    assert parse_date(text) == iso


def test_registry_lets_a_new_format_claim_files_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_FORMATS", list(formats.formats()))

    def parse_minutes(path, data, *, doc_id=None, source=None):
        return make_document(path, data, title="Minutes", kind="minutes", date="", text="m")

    formats.register(
        Format("minutes", (".txt",), parse_minutes, lambda p, d: d.startswith(b"MINUTES")),
        before="whatsapp",
    )
    minutes = write(tmp_path, "minutes.txt", "MINUTES\n01/02/2026, 10:00 - Ann: hi")
    chat = write(tmp_path, "chat.txt", "01/02/2026, 10:00 - Ann: hi\n01/02/2026, 10:01 - Bo: yo")
    notes = write(tmp_path, "notes.txt", "plain notes")
    assert parse(minutes).kind == "minutes"
    assert parse(chat).kind == "chat"  # the built-in WhatsApp format still claims its files
    assert parse(notes).kind == "text"
    names = [f.name for f in formats.formats()]
    assert names.index("minutes") == names.index("whatsapp") - 1
