"""WebVTT transcripts from Zoom, Teams and Meet: cues become merged speaker turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.formats import ParseError, find_format, parse_file
from tests.support import FIXTURES

VTT = FIXTURES / "vtt"
ZOOM = VTT / "2026-03-10_zoom-budget-call.vtt"
TEAMS = VTT / "teams-unea-sync.vtt"
MEET = VTT / "meet-side-event.vtt"


def lines(path: Path) -> list[str]:
    doc = parse_file(path, path.read_bytes())
    return [line for chunk in doc.chunks for line in chunk.text.split("\n")]


@pytest.mark.parametrize("path", [ZOOM, TEAMS, MEET], ids=lambda p: p.stem)
def test_every_variant_is_a_transcript_without_cue_syntax(path: Path) -> None:
    data = path.read_bytes()
    assert find_format(path, data).name == "vtt"
    doc = parse_file(path, data)
    body = "\n".join(c.text for c in doc.chunks)
    assert doc.kind == "transcript" and len(doc.sha256) == 64
    for syntax in ("WEBVTT", "-->", "<v", "</", "&amp;", "NOTE", "::cue", "align:", "b5f8a1c2"):
        assert syntax not in body, syntax
    # Every line is a turn of a known speaker; speakers are the document's people.
    speakers = {line.split(": ", 1)[0] for line in body.split("\n")}
    assert speakers == set(doc.people) == {s for c in doc.chunks for s in c.speakers}


def test_zoom_speaker_lines_and_multi_line_cues_merge_into_turns() -> None:
    assert lines(ZOOM) == [
        "Amara Okafor: Thanks for joining. Let's go through the budget first.",
        "Jonas Weber: The travel line is over by about ten percent this quarter. "
        "Mostly the Nairobi trip.",
        "Amara Okafor: Then we cap travel at two people for the OECPR.",
        "Priya Raman: Agreed, I will follow the negotiations remotely.",
    ]
    doc = parse_file(ZOOM, ZOOM.read_bytes())
    assert (doc.title, doc.date) == ("Zoom budget call", "2026-03-10")  # from the file name
    assert doc.people == ("Amara Okafor", "Jonas Weber", "Priya Raman")


def test_teams_voice_tags_give_speakers_and_entities_are_decoded() -> None:
    assert lines(TEAMS) == [
        "Amara Okafor: Thanks for joining, everyone. This is the UNEA preparation call. "
        "First item is the chemicals brief.",
        "Priya Raman: The first draft will be ready by 20 March & circulated for comments.",
        "Tom Fletcher: I will ask Defra for the UK line on chemicals.",
        "Amara Okafor: Good, thanks Tom.",  # a second voice inside the same cue
    ]


def test_meet_header_title_notes_styles_and_inline_tags() -> None:
    doc = parse_file(MEET, MEET.read_bytes())
    assert (doc.title, doc.date) == ("Side event planning 2026-03-12", "2026-03-12")
    assert lines(MEET) == [
        "Tom Fletcher: We should apply early. Side event slots fill within a week of the "
        "call opening.",
        "Priya Raman: I can present the plastics monitoring data.",
        "Amara Okafor: Agreed: Tom leads the application.",
        "Priya Raman: It is the strongest evidence we have.",
    ]
    assert "Recorded in Google Meet" not in "\n".join(lines(MEET))


def test_captions_without_speakers_are_narration(tmp_path: Path) -> None:
    path = tmp_path / "captions.vtt"
    path.write_text(
        "WEBVTT\n\n00:01.000 --> 00:03.000\nwelcome to the\nwebinar\n\n"
        "00:03.000 --> 00:05.000\non plastics policy\n",
        encoding="utf-8",
    )
    doc = parse_file(path, path.read_bytes())
    assert [c.text for c in doc.chunks] == ["welcome to the webinar on plastics policy"]
    assert doc.people == () and doc.chunks[0].speakers == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n00:00:01.000 --> 00:00:02.000\nHello\n", "WEBVTT"),
        ("WEBVTT\n\nNOTE only a comment\n", "no text"),
    ],
)
def test_broken_files_raise_parse_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.vtt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParseError, match=message):
        parse_file(path, path.read_bytes())
