"""Content types against their bytes: what WhatsApp sends passes, a mislabelled file does not."""

from __future__ import annotations

import io
import zipfile

import pytest

from bot.media.kinds import AUDIO_MAX_BYTES, DOCUMENT_MAX_BYTES, DOCX, kind_of


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<w:document/>")
    return buffer.getvalue()


OGG = b"OggS\x00\x02" + bytes(30) + b"OpusHead"
PDF = b"%PDF-1.4\n"
DOCX_BYTES = _zip("[Content_Types].xml", "word/document.xml")

MATCHES = [
    ("audio/ogg; codecs=opus", OGG),
    ("Audio/OGG", OGG),
    ("audio/mpeg", b"ID3\x04\x00" + bytes(10)),
    ("audio/mpeg", b"\xff\xfb\x90\x64" + bytes(10)),  # an MPEG-1 layer III frame header
    ("audio/mp4", bytes([0, 0, 0, 0x20]) + b"ftypM4A " + bytes(8)),
    ("audio/amr", b"#!AMR\n" + bytes(10)),
    ("audio/aac", b"\xff\xf1\x50\x80" + bytes(10)),
    ("application/pdf", PDF),
    (DOCX, DOCX_BYTES),
    ("text/plain", "Meeting notes: café, 東京, 🙂\n".encode()),
    ("text/markdown", "\ufeff# Notes\n".encode()),
]

MISMATCHES = [
    ("audio/ogg", PDF),  # a PDF labelled as a voice note
    ("audio/ogg", b""),
    ("audio/mpeg", OGG),
    ("audio/mp4", b"RIFF\x00\x00\x00\x00WAVE"),
    ("audio/amr", b"#!AM"),
    ("application/pdf", OGG),
    ("application/pdf", b" %PDF-1.4"),
    (DOCX, _zip("xl/workbook.xml")),  # a spreadsheet is a ZIP too
    (DOCX, b"PK\x03\x04 not really a zip"),
    (DOCX, PDF),
    ("text/plain", "café".encode("latin-1")),  # not UTF-8
    ("text/markdown", b"# Notes\x00\x01binary"),
    ("text/plain", PDF[:4] + b"\xe2\xe3\xcf\xd3"),
]


@pytest.mark.parametrize(("content_type", "data"), MATCHES)
def test_bytes_that_bear_out_the_content_type_pass(content_type, data):
    assert kind_of(content_type).matches(data)


@pytest.mark.parametrize(("content_type", "data"), MISMATCHES)
def test_bytes_of_another_kind_do_not(content_type, data):
    assert not kind_of(content_type).matches(data)


def test_audio_and_documents_have_their_own_caps():
    assert (kind_of("audio/ogg").kind, kind_of("audio/ogg").max_bytes) == ("audio", AUDIO_MAX_BYTES)
    assert kind_of(DOCX).max_bytes == kind_of("text/plain").max_bytes == DOCUMENT_MAX_BYTES
    assert AUDIO_MAX_BYTES == 16 * 1024 * 1024 and DOCUMENT_MAX_BYTES == 20 * 1024 * 1024


@pytest.mark.parametrize("content_type", ["image/jpeg", "video/mp4", "application/zip", ""])
def test_types_the_bot_has_no_use_for_have_no_kind(content_type):
    assert kind_of(content_type) is None
