"""Hostile input for every format parser: linear time, only ParseError, no control characters.

The crafted inputs are the shapes that made the parsers' regular expressions backtrack: the
WebVTT voice tag exponentially (`<v.a.a.a...`), the header, heading, table-rule, turn,
comment, link, tag, name-list and edited-marker patterns quadratically (a long run of the
characters a pattern repeats, then a character that makes the match fail). Each is sized so
that the old patterns took over 10 s to parse it (19 to 29 s on the 2-core dev machine)
where a linear parse takes milliseconds. Hypothesis then feeds each format junk built from
the characters its parser cares about, in short and long runs, mixed with those fragments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.knowledge.formats import ParseError, formats, parse_file
from bot.knowledge.formats.base import make_document
from bot.knowledge.store import Document

# Seconds per parse. A linear parse of any input here takes at most a few milliseconds,
# so a loaded 2-core CI machine has ample headroom; the old patterns took 10 s or more.
BOUND = 1.0
CONTROL = {chr(c) for c in range(32)} - {"\t", "\n"}
VTT_CUE = "WEBVTT\n\n00:00.000 --> 00:01.000\n"
CHAT_LINE = "01/02/2024, 10:00 - "

# (id, file name, content): the file goes through the registry, sniffers included.
CRAFTED: list[tuple[str, str, str]] = [
    ("header-value-spaces", "notes.txt", "Title: a" + " " * 60_000 + "b\nWe met."),
    ("attendees-unclosed-brackets", "notes.txt", "Attendees: " + "(" * 300_000 + "\nWe met."),
    ("attendees-spaces", "notes.txt", "Attendees: a" + " " * 35_000 + "b\nWe met."),
    ("turn-leading-spaces", "call.txt", " " * 16_000 + "x\nAnn: hi\nBob: yo\nAnn: ok"),
    ("turn-timestamp-spaces", "call.txt", "[00:12] " + " " * 24_000 + "x\nAnn: hi\nAnn: ok"),
    ("heading-spaces", "notes.md", "# a" + " " * 42_000 + "b\n\nText."),
    ("table-rule-leading-spaces", "notes.md", " " * 42_000 + "x\n\nText."),
    ("table-rule-trailing-spaces", "notes.md", "---" + " " * 66_000 + "x\n\nText."),
    ("unclosed-comments", "notes.md", "<!--" * 32_000),
    ("unclosed-link-texts", "notes.md", "[" * 70_000),
    ("unclosed-link-urls", "notes.md", "[a](" * 100_000),
    ("vtt-voice-classes", "call.vtt", VTT_CUE + "<v" + ".a" * 30),
    ("vtt-voice-spaces", "call.vtt", VTT_CUE + "<v" + " " * 100_000 + "x"),
    ("vtt-unclosed-voices", "call.vtt", VTT_CUE + "<v a" * 44_000),
    ("vtt-unclosed-tags", "call.vtt", VTT_CUE + "<" * 200_000),
    (
        "chat-edited-spaces",
        "chat.txt",
        f"{CHAT_LINE}Ann: a" + " " * 160_000 + f"b\n{CHAT_LINE}Bo: x",
    ),
]

# Shorter versions of the same shapes, for Hypothesis to mix into its junk.
FRAGMENTS = [
    "Title: a",
    "Attendees: ",
    "[00:12] ",
    "# a",
    "---",
    "<!--",
    "[a](",
    "<v",
    ".a",
    "<v a",
    "&#",
    "<this message was edited>",
]


def parse_timed(parse: Callable[[], Document]) -> tuple[float, Document | None]:
    """Seconds a parse took and its document (None when it raised ParseError)."""
    started = time.perf_counter()
    try:
        doc = parse()
    except ParseError:
        doc = None
    return time.perf_counter() - started, doc


def assert_no_control_characters(doc: Document) -> None:
    texts = [doc.title, doc.source, *doc.people]
    texts += [t for c in doc.chunks for t in (c.text, *c.speakers)]
    found = {ch for t in texts for ch in t} & CONTROL
    assert not found, sorted(found)


@pytest.mark.parametrize(("name", "text"), [pytest.param(n, t, id=i) for i, n, t in CRAFTED])
def test_crafted_input_parses_in_linear_time(name: str, text: str) -> None:
    data = text.encode()
    elapsed, _ = parse_timed(lambda: parse_file(Path(name), data))
    assert elapsed < BOUND, f"{len(data):,} bytes took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("deep.json", b'{"meeting_transcripts": ' + b"[" * 100_000),
        ("long-number.json", b'{"meeting_transcripts": [], "n": ' + b"1" * 5_000 + b"}"),
        ("odd-utf16.txt", "Notes".encode("utf-16") + b"\x00"),
        ("surrogate-utf16.txt", b"\xff\xfe" + b"a\x00" * 20 + b"\x00\xd8"),
        ("long-reference.vtt", (VTT_CUE + "&#" + "0" * 5_000 + "65; &#" + "9" * 5_000).encode()),
    ],
)
def test_malformed_input_raises_only_parse_error(name: str, data: bytes) -> None:
    elapsed, _ = parse_timed(lambda: parse_file(Path(name), data))
    assert elapsed < BOUND


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("call.vtt", VTT_CUE + "<v " + "A" * 20_000 + ">" + "b " * 20_000),
        (
            "meeting.json",
            json.dumps(
                {"meeting_transcripts": [{"speaker": "A" * 20_000, "content": "b " * 20_000}]}
            ),
        ),
    ],
)
def test_a_huge_speaker_name_does_not_multiply_the_text(name: str, text: str) -> None:
    doc = parse_file(Path(name), text.encode())
    assert sum(len(c.text) for c in doc.chunks) < 2 * len(text)  # was 400 MB from 60 KB


def test_long_character_references_read_as_html_reads_short_ones() -> None:
    data = (VTT_CUE + "&#" + "0" * 5_000 + "65; and &#" + "9" * 5_000 + ";").encode()
    doc = parse_file(Path("refs.vtt"), data)
    assert doc.chunks[0].text == "A and \ufffd"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bell.txt", "Title: Bud\x07get\n\nWe\x01 met\x1b.\rNext\x0bline\x0c."),
        ("bell.md", "# Bud\x07get\n\nWe\x01 met\x1b.\n"),
        ("call.txt", "Ann\x07: hi\x01 there\nBob: yo\x1f\nAnn: ok\x02\n"),
        ("bell.vtt", VTT_CUE + "<v Ann\x07>hi\x01 &#7;&#27;there\n"),
        ("chat.txt", f"{CHAT_LINE}Ann: hi\x07\n{CHAT_LINE}Bo\x08b: yo\x1a\n"),
        (
            "bell.json",
            json.dumps({"meeting_transcripts": [{"speaker": "A\x07", "content": "x\x1b"}]}),
        ),
    ],
)
def test_control_characters_never_reach_a_document(name: str, text: str) -> None:
    doc = parse_file(Path(name), text.encode())
    assert_no_control_characters(doc)


def test_make_document_removes_control_characters_and_keeps_line_breaks() -> None:
    doc = make_document(
        Path("x\x07.txt"),
        b"",
        title="\x07",
        kind="text",
        date="",
        people=["Ann\x00", "Ann"],
        text="one\r\ntwo\rthree\x00\tfour\x1b\n\nfive",
    )
    assert doc.chunks[0].text == "one\ntwo\nthree\tfour\n\nfive"
    assert (doc.title, doc.source, doc.people) == ("X", "x.txt", ("Ann",))


def junk(bits: list[str]) -> st.SearchStrategy[str]:
    """Up to a few KB: arbitrary text, a parser's syntax characters, crafted fragments, and
    long runs of any of them."""
    token = st.sampled_from(bits + FRAGMENTS)
    piece = st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
        token,
        st.tuples(token, st.integers(1, 600)).map(lambda run: run[0] * run[1]),
    )
    return st.lists(piece, max_size=24).map(lambda pieces: "".join(pieces)[:6_000])


TEXT_BITS = ["Title:", "Date: ", "Attendees:", " and ", ",", "(", ")", ":", " ", "\t", "\n",
             "\n\n", "Ann", "Ann Lee: ", "00:12 ", "]", "4 March 2026", "2026-03-04", "\x07",
             "\r", ". ", "…", "\x0b"]  # fmt: skip
MARKDOWN_BITS = ["#", "## ", " ", "|", "| --- |", "-", ":", "<!--", "-->", "[", "]", "(",
                 ")", "!", "*", "**", "_", "__", "`", "```", "=", "> ", "\n", "\n---\n",
                 "---\ntitle: x\n---\n", "Ann: "]  # fmt: skip
VTT_BITS = ["<v", "<v.", "<v ", ".", "a", " ", "\t", ">", "<", "</v>", "<c.x>", "&#", "&#x",
            "0", "9", ";", "&amp;", " --> ", "00:00.000", "\n", "\n\n", "NOTE ", "Ann: ",
            "- ", "\u00a0"]  # fmt: skip
CHAT_BITS = [CHAT_LINE, "\n" + CHAT_LINE, "[01/02/2024, 10:00:00] ", "\n[1/2/24, 9:05:00 PM] ",
             "Ann: ", "Bo: ", " ", "\n", ":", "a", "\u200e", "<attached: ", ">",
             " (file attached)", "<Media omitted>", "\u202f", "13/13/2024, 99:99 - "]  # fmt: skip
FUZZ = settings(
    max_examples=150,
    deadline=None,  # timed by the test itself, against BOUND
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_format(format_name: str, path: Path, data: bytes) -> None:
    """The format's sniffer and parser finish within BOUND, and raise only ParseError."""
    fmt = next(f for f in formats() if f.name == format_name)
    if fmt.sniff is not None:
        elapsed, _ = parse_timed(lambda: fmt.sniff(path, data))  # type: ignore[misc,return-value]
        assert elapsed < BOUND
    elapsed, doc = parse_timed(lambda: fmt.parse(path, data))
    assert elapsed < BOUND, f"{len(data):,} bytes took {elapsed:.2f}s"
    if doc is not None:
        # Chunks add a speaker prefix per piece and a line per chat day, never more.
        assert sum(len(c.text) for c in doc.chunks) <= 2 * len(data) + 100
        assert_no_control_characters(doc)


@FUZZ
@given(junk(TEXT_BITS))
@example("Title: a" + " " * 3_000 + "b")
@example("Attendees: " + "(" * 3_000)
def test_text_parser_on_junk(text: str) -> None:
    check_format("text", Path("notes.txt"), text.encode())


@FUZZ
@given(junk(TEXT_BITS + MARKDOWN_BITS), st.sampled_from(["call.txt", "call.md"]))
@example(" " * 3_000 + "x\nAnn: hi\nAnn: ok", "call.txt")
def test_transcript_parser_on_junk(text: str, name: str) -> None:
    check_format("transcript", Path(name), text.encode())


@FUZZ
@given(junk(MARKDOWN_BITS + TEXT_BITS))
@example("# a" + " " * 3_000 + "b")
@example("[a](" * 1_000)
def test_markdown_parser_on_junk(text: str) -> None:
    check_format("markdown", Path("notes.md"), text.encode())


@FUZZ
@given(st.sampled_from(["", "WEBVTT\n\n", VTT_CUE]), junk(VTT_BITS))
@example(VTT_CUE, "<v" + ".a" * 20)
@example(VTT_CUE, "<v." * 1_000)
def test_vtt_parser_on_junk(head: str, text: str) -> None:
    check_format("vtt", Path("call.vtt"), (head + text).encode())


@FUZZ
@given(st.sampled_from(["", CHAT_LINE, "[01/02/2024, 10:00:00] "]), junk(CHAT_BITS))
@example(CHAT_LINE, "Ann: a" + " " * 3_000 + "b")
def test_whatsapp_parser_on_junk(head: str, text: str) -> None:
    check_format("whatsapp", Path("chat.txt"), (head + text).encode())


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | junk(TEXT_BITS),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
qmsum_turn = st.fixed_dictionaries(
    {}, optional={"speaker": json_value, "content": st.one_of(junk(TEXT_BITS), json_value)}
)


@FUZZ
@given(
    st.one_of(
        st.lists(st.one_of(qmsum_turn, json_value), max_size=6).map(
            lambda rows: json.dumps({"meeting_transcripts": rows})
        ),
        junk(['"meeting_transcripts"', "{", "}", "[", "]", ":", ",", '"', "\\u0007", "1e999"]),
    )
)
def test_qmsum_parser_on_junk(text: str) -> None:
    check_format("qmsum", Path("meeting.json"), text.encode())


@FUZZ
@given(st.binary(max_size=3_000), st.sampled_from([b"", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"]))
def test_every_format_on_raw_bytes(data: bytes, bom: bytes) -> None:
    for fmt in formats():
        check_format(fmt.name, Path("file" + fmt.suffixes[0]), bom + data)
