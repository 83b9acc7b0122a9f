"""The media the bot accepts: each content type's kind, size cap and byte signature.

Twilio passes on the content type the sender's phone claimed (`MediaContentType{N}`); the
bytes must bear it out before anything parses them, so a PDF labelled as a voice note
never reaches the transcriber and a renamed archive never reaches ingest.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

MB = 1024 * 1024
# WhatsApp itself refuses audio over 16 MB, so a larger "voice note" did not come from a
# phone; 16 MB is also about the most a transcription call can take inside one reply.
AUDIO_MAX_BYTES = 16 * MB
# Documents (PDF, Word, text) are read into memory and ingested inside one reply's budget:
# 20 MB is hundreds of pages of PDF, more than that cannot be chunked and stored in time.
DOCUMENT_MAX_BYTES = 20 * MB

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# A DOCX is a ZIP archive; what makes it a Word document is this part inside it.
DOCX_BODY_PART = "word/document.xml"


def _ogg(data: bytes) -> bool:
    """An Ogg container (WhatsApp's voice notes: Opus in Ogg)."""
    return data.startswith(b"OggS")


def _mp3(data: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame's 11 sync bits."""
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] >= 0xE0)


def _mp4(data: bytes) -> bool:
    """An ISO media file (MP4, M4A): its first box is `ftyp`."""
    return data[4:8] == b"ftyp"


def _amr(data: bytes) -> bool:
    """AMR narrow- or wide-band storage format ("#!AMR\\n", "#!AMR-WB\\n")."""
    return data.startswith(b"#!AMR")


def _aac(data: bytes) -> bool:
    """Raw AAC in ADTS frames (12 sync bits, layer 0), or AAC in an MP4 container."""
    adts = len(data) > 1 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0
    return adts or _mp4(data)


def _pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-")


def _docx(data: bytes) -> bool:
    """A ZIP archive holding a Word body. Only the central directory is read: nothing is
    decompressed, so a ZIP bomb costs nothing here."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return DOCX_BODY_PART in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _utf8_text(data: bytes) -> bool:
    """Text that decodes as UTF-8 (a BOM allowed) and holds no NUL, which no text file has."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


@dataclass(frozen=True)
class MediaKind:
    """What one content type is for, how large it may be, and how its bytes look."""

    kind: str  # "audio" (transcribed) or "document" (ingested)
    max_bytes: int
    matches: Callable[[bytes], bool]


def _audio(matches: Callable[[bytes], bool]) -> MediaKind:
    return MediaKind("audio", AUDIO_MAX_BYTES, matches)


def _document(matches: Callable[[bytes], bool]) -> MediaKind:
    return MediaKind("document", DOCUMENT_MAX_BYTES, matches)


# The audio types WhatsApp delivers, and the documents the knowledge base can ingest.
KINDS: dict[str, MediaKind] = {
    "audio/ogg": _audio(_ogg),
    "audio/opus": _audio(_ogg),
    "audio/mpeg": _audio(_mp3),
    "audio/mp4": _audio(_mp4),
    "audio/x-m4a": _audio(_mp4),
    "audio/amr": _audio(_amr),
    "audio/aac": _audio(_aac),
    "application/pdf": _document(_pdf),
    DOCX: _document(_docx),
    "text/plain": _document(_utf8_text),
    "text/markdown": _document(_utf8_text),
    "text/x-markdown": _document(_utf8_text),
}


def media_type(content_type: str) -> str:
    """'Audio/OGG; codecs=opus' -> 'audio/ogg'."""
    return content_type.split(";", 1)[0].strip().lower()


def kind_of(content_type: str) -> MediaKind | None:
    """The kind for a content type as Twilio sends it, or None when the bot has no use for it."""
    return KINDS.get(media_type(content_type))
