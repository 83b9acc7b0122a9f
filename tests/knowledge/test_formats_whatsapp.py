"""WhatsApp chat exports: Android and iOS, 12- and 24-hour clocks, system lines left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.formats import find_format, parse_file
from tests.support import FIXTURES

CHATS = FIXTURES / "whatsapp"
ANDROID_24H = CHATS / "WhatsApp Chat with UNEA team.txt"  # dd/mm/yyyy, hh:mm
ANDROID_12H = CHATS / "WhatsApp Chat with Tom Fletcher.txt"  # dd/mm/yy, h:mm U+202F pm
IOS_24H = CHATS / "ios-group" / "_chat.txt"  # [dd/mm/yyyy, hh:mm:ss], U+200E marks
IOS_12H = CHATS / "ios-direct" / "_chat.txt"  # [m/d/yy, h:mm:ss U+202F AM], US order
SYSTEM_WORDS = (
    "end-to-end",
    "added",
    "created group",
    "left",
    "omitted",
    "<attached:",
    "(file attached)",
    "deleted",
    "Missed voice call",
    "This message was edited",
    "\u200e",
    "\u202f",
)


def parse(path: Path):
    return parse_file(path, path.read_bytes())


def body(path: Path) -> str:
    return "\n".join(c.text for c in parse(path).chunks)


@pytest.mark.parametrize(
    ("path", "date", "people", "title"),
    [
        (
            ANDROID_24H,
            "2024-01-15",
            ("Amara Okafor", "Priya Raman", "Jonas Weber"),
            "WhatsApp Chat with UNEA team",
        ),
        (
            ANDROID_12H,
            "2024-02-03",
            ("Tom Fletcher", "Amara Okafor"),
            "WhatsApp Chat with Tom Fletcher",
        ),
        (
            IOS_24H,
            "2024-03-20",
            ("Priya Raman", "Jonas Weber", "Amara Okafor"),
            "WhatsApp chat with UNEA team",
        ),
        (
            IOS_12H,
            "2024-01-15",
            ("Amara Okafor", "Tom Fletcher"),
            "WhatsApp chat with Amara Okafor",
        ),
    ],
    ids=["android-24h", "android-12h", "ios-24h", "ios-12h"],
)
def test_each_variant_gives_senders_first_date_and_clean_text(
    path: Path, date: str, people: tuple[str, ...], title: str
) -> None:
    assert find_format(path, path.read_bytes()).name == "whatsapp"
    doc = parse(path)
    assert (doc.kind, doc.date, doc.people, doc.title) == ("chat", date, people, title)
    text = body(path)
    for word in SYSTEM_WORDS:
        assert word not in text, word
    # Turns are `Sender: text` or a day line; no timestamps survive.
    assert "[" not in text and " - " not in text.replace("\n- ", "\n")
    assert {s for c in doc.chunks for s in c.speakers} == set(people)


def test_multi_line_messages_stay_with_their_sender() -> None:
    assert (
        "Amara Okafor: Morning all. The chemicals brief is due on 20 March.\n"
        "Priya, can you own it?" in body(ANDROID_24H)
    )
    assert (
        "Jonas Weber: Thanks. Two comments:\n1. shorten the summary\n2. add the waste figures"
        in body(IOS_24H)
    )
    assert "Nairobi travel is booked:\n- Tom\n- Amara" in body(ANDROID_12H)


def test_consecutive_messages_merge_and_days_are_marked() -> None:
    lines = body(ANDROID_24H).split("\n")
    assert lines[0] == "2024-01-15" and "2024-01-16" in lines
    assert lines[lines.index("2024-01-16") + 1].startswith("Amara Okafor: Reminder")
    # Two messages in a row from Tom are one turn.
    assert "Tom Fletcher: Defra confirmed the UK line on chemicals.\nThey will follow" in body(
        ANDROID_12H
    )


def test_edited_marker_is_removed_but_the_message_kept() -> None:
    assert "Jonas Weber: The Commission wants written input by 30 April" in body(ANDROID_24H)


@pytest.mark.parametrize(
    "text",
    [
        "Meeting notes\n15/01/2024, 09:00 - kickoff\nWe agreed on the plan.\n",
        "Amara: Hello.\nJonas: Hi Amara.\nAmara: Let's begin.\n",
        "Date: 15/01/2024\nAttendees: A, B\n\nNotes follow.\n",
    ],
)
def test_other_text_files_are_not_taken_for_chats(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    assert find_format(path, path.read_bytes()).name != "whatsapp"


def test_a_chat_of_only_system_lines_has_nothing_to_index(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(
        "01/02/2024, 10:00 - Messages and calls are end-to-end encrypted. Tap to learn more.\n"
        '01/02/2024, 10:01 - Ann created group "X"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="no text"):
        parse(path)
