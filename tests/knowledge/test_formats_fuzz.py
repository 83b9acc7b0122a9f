"""Hostile input for every format parser: linear time, only ParseError, no control characters.

The crafted inputs are the shapes that made the parsers' regular expressions backtrack: the
WebVTT voice tag exponentially (`<v.a.a.a...`), the header, heading, table-rule, turn,
comment, link, tag, name-list and edited-marker patterns quadratically (a long run of the
characters a pattern repeats, then a character that makes the match fail). Each is sized so
that the old patterns took over 10 s to parse it (19 to 29 s on the 2-core dev machine)
where a linear parse takes milliseconds. Hypothesis then feeds each format junk built from
the characters its parser cares about, in short and long runs, mixed with those fragments.

PDF and Word files are parsed by pypdf and python-docx (lxml): their hostile shapes are the
structural ones (nesting, cycles, decompression and entity bombs, a style chain per
paragraph), and Hypothesis edits the bytes of valid files and the XML inside a .docx.
"""

from __future__ import annotations

import functools
import io
import json
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.knowledge.formats import ParseError, formats, parse_file
from bot.knowledge.formats.base import make_document
from bot.knowledge.store import Document
from tests.office_files import pdf_from_objects

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


# -- PDF and Word ------------------------------------------------------------------------
W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
    b"/Resources << /Font << /F1 3 0 R >> >> >>"
)
ONE_PAGE = b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>"


def one_page(
    content: bytes,
    *,
    catalog: bytes = b"",
    pages: bytes = ONE_PAGE,
) -> bytes:
    """A one-page PDF whose page shows `content` (a content stream, its dictionary first)."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R " + catalog + b" >>"
    return pdf_from_objects({1: catalog, 2: pages, 3: FONT, 4: content, 5: PAGE})


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def docx_with(base: bytes, **parts: bytes) -> bytes:
    """`base` with some parts replaced (keyword `word_document` is word/document.xml)."""
    with zipfile.ZipFile(io.BytesIO(base)) as source:
        contents = {info.filename: source.read(info) for info in source.infolist()}
    contents.update({name.replace("_", "/", 1) + ".xml": xml for name, xml in parts.items()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in contents.items():
            target.writestr(name, content)
    return out.getvalue()


def word_xml(root: str, inner: bytes) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?><w:%s %s>%s</w:%s>' % (
        root.encode(),
        W,
        inner,
        root.encode(),
    )


def styled(style: bytes, text: bytes) -> bytes:
    return b'<w:p><w:pPr><w:pStyle w:val="%s"/></w:pPr><w:r><w:t>%s</w:t></w:r></w:p>' % (
        style,
        text,
    )


LAUGHS = b"".join(
    b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10 if i else b"lol") for i in range(10)
)


@functools.cache
def hostile_files(base_docx: bytes) -> dict[str, tuple[str, bytes]]:
    """id -> (file name, bytes): the structural attacks on pypdf and python-docx."""

    def body(inner: bytes) -> bytes:
        return word_xml("document", b"<w:body>" + inner + b"</w:body>")

    chain = b"".join(
        b'<w:style w:type="paragraph" w:styleId="S%d"><w:name w:val="s%d"/>'
        b'<w:basedOn w:val="S%d"/></w:style>' % (i, i, i + 1)
        for i in range(2_000)
    )
    return {
        "pdf-nested-arrays": ("a.pdf", one_page(stream(b""), catalog=b"/X " + b"[" * 30_000)),
        "pdf-page-tree-cycle": (
            "a.pdf",
            one_page(stream(b""), pages=b"<< /Type /Pages /Kids [2 0 R 5 0 R] /Count 2 >>"),
        ),
        "pdf-count-lies": (
            "a.pdf",
            one_page(
                stream(b"BT /F1 9 Tf (x) Tj ET"), pages=ONE_PAGE.replace(b"1 >>", b"9999999 >>")
            ),
        ),
        "pdf-same-page-many-times": (
            "a.pdf",
            one_page(stream(b""), pages=b"<< /Type /Pages /Kids [" + b"5 0 R " * 20_000 + b"] >>"),
        ),
        "pdf-flate-bomb": (  # 80 MB of spaces in 80 KB: pypdf stops decompressing at 75 MB
            "a.pdf",
            one_page(stream(zlib.compress(b" " * 80_000_000, 9), b"/Filter /FlateDecode")),
        ),
        "pdf-unclosed-strings": ("a.pdf", one_page(stream(b"BT /F1 9 Tf " + b"(" * 100_000))),
        "pdf-text-operators": ("a.pdf", one_page(stream(b"BT /F1 9 Tf " + b"(w) Tj " * 5_000))),
        "docx-deep-nesting": (
            "a.docx",
            docx_with(base_docx, word_document=body(b"<w:p>" + b"<w:r>" * 50_000)),
        ),
        "docx-entity-bomb": (
            "a.docx",
            docx_with(
                base_docx,
                word_document=b'<?xml version="1.0"?><!DOCTYPE d ['
                + LAUGHS
                + b"]>"
                + body(b"<w:p><w:r><w:t>&l9;</w:t></w:r></w:p>"),
            ),
        ),
        "docx-style-cycle": (
            "a.docx",
            docx_with(
                base_docx,
                word_styles=word_xml("styles", chain.replace(b'w:val="S2000"', b'w:val="S0"')),
                word_document=body(b"".join(styled(b"S%d" % i, b"x") for i in range(0, 2_000, 7))),
            ),
        ),
        "docx-runs": (
            "a.docx",
            docx_with(
                base_docx,
                word_document=body(b"<w:p>" + b"<w:r><w:t>a</w:t></w:r>" * 20_000 + b"</w:p>"),
            ),
        ),
    }


HOSTILE = [
    "pdf-nested-arrays",
    "pdf-page-tree-cycle",
    "pdf-count-lies",
    "pdf-same-page-many-times",
    "pdf-flate-bomb",
    "pdf-unclosed-strings",
    "pdf-text-operators",
    "docx-deep-nesting",
    "docx-entity-bomb",
    "docx-style-cycle",
    "docx-runs",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_pdf_and_word_files_raise_only_parse_error_in_time(office_files, case) -> None:
    name, data = hostile_files(office_files["strategy-review.docx"])[case]
    elapsed, doc = parse_timed(lambda: parse_file(Path(name), data))
    assert elapsed < BOUND, f"{len(data):,} bytes took {elapsed:.2f}s"
    if doc is not None:
        assert_no_control_characters(doc)


edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(
    [b"", b"\x00", b"(", b")", b"[", b"<<", b">>", b"obj", b"endobj", b"stream", b"R", b"/",
     b"\\", b"%%EOF", b"<", b">", b"&", b"<w:p>", b"</w:p>", b"<w:t>", b"\x07", b"\xff"])),
    max_size=8)  # fmt: skip


def edited(data: bytes, changes: list[tuple[float, bytes]], cut: float) -> bytes:
    """`data` with each (where, what) written over the byte there, then cut at `cut`."""
    out = bytearray(data)
    for where, what in changes:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        out[at : at + 1] = what
    return bytes(out[: max(1, int(cut * len(out)))])


@FUZZ
@given(edits, st.floats(0.2, 1.0), st.sampled_from(["board-minutes-march.pdf", "locked.pdf"]))
def test_pdf_parser_on_edited_files(office_files, changes, cut, name) -> None:
    check_format("pdf", Path("edited.pdf"), edited(office_files[name], changes, cut))


@FUZZ
@given(edits, st.floats(0.0, 1.0), st.booleans())
def test_docx_parser_on_edited_xml_and_archives(office_files, changes, cut, whole) -> None:
    base = office_files["strategy-review.docx"]
    if whole:  # the archive's bytes
        data = edited(base, changes, 0.5 + cut / 2)
    else:  # the document's XML, in a sound archive
        with zipfile.ZipFile(io.BytesIO(base)) as source:
            xml = source.read("word/document.xml")
        data = docx_with(base, word_document=edited(xml, changes, cut))
    check_format("docx", Path("edited.docx"), data)
