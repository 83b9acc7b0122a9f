"""Passage text -> sentences that know their place: speaker, turn, heading, label."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from bot.text import STOPWORDS

STEM_CHARS = 5
WRAPPED_LINE_CHARS = 60
HEADING_WORDS = 12  # a line without a full stop and at most this many words is a heading
LABEL_WORDS = 3  # "Notes by: ..." is a label; "Focus countries for 2026: ..." is prose

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+")
# "Alice: text" or "Dr. Bob Smith: text" at the start of a transcript line.
_SPEAKER_RE = re.compile(r"^\s*([^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})\s*:\s+(\S.*)$")
# "Notes by: Lena" opens a line of its own even though "by" is not capitalised.
_LABEL_RE = re.compile(r"^[^\W\d_][\w ]{0,24}:\s")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")
_MARKDOWN_HEADING_RE = re.compile(r"^#{1,6}\s+")
_ENDS_SENTENCE_RE = re.compile(r"[.!?…;,]['\"”’)\]]*$")


def stem(word: str) -> str:
    """Light stemming: lowercase, drop a plural or -ing/-ed ending, keep a short prefix."""
    word = word.lower()
    if len(word) > 4:
        if word.endswith("ies"):
            word = word[:-3] + "y"
        elif word.endswith(("ses", "xes", "zes", "ches", "shes")):
            word = word[:-2]
        elif word.endswith("s") and not word.endswith(("ss", "us", "is")):  # not "focus"
            word = word[:-1]
        if word.endswith("ing") and len(word) > 6:  # "briefings" -> "briefing" -> "brief"
            word = word[:-3]
        elif word.endswith("ed") and len(word) > 5:
            word = word[:-2]
    # Prefix truncation is crude but language-agnostic: "attended"/"Attendees" → "atten".
    return word[:STEM_CHARS]


def words(text: str) -> list[str]:
    """The words of `text` (letters and digits), in order."""
    return WORD_RE.findall(text)


def content_stems(text: str) -> set[str]:
    """The stems of the words in `text` that carry meaning (no stopwords, no 1-letter words)."""
    # Distinct words first: a whole passage repeats many of its words.
    return stems_of(set(WORD_RE.findall(text)))


def stems_of(found: Iterable[str]) -> set[str]:
    """content_stems of text whose words are `found`."""
    # map() and one discard instead of a Python-level loop: this runs for every sentence.
    stems = set(map(_content_stem, found))
    stems.discard("")
    return stems


@lru_cache(maxsize=1 << 16)
def _content_stem(word: str) -> str:
    """stem(word), or "" for a stopword or a 1-letter word. Cached: an extractive answer
    stems every word of its passages, and a team's vocabulary repeats (64k words at most,
    a few MB)."""
    if (len(word) > 1 or word.isdigit()) and word.lower() not in STOPWORDS:
        return stem(word)
    return ""


def _speaker(line: str) -> tuple[str, str] | None:
    """("Amara Okafor", "text") for a `Name: text` line; names are capitalised words."""
    match = _SPEAKER_RE.match(line)
    if match is None or not all(word[0].isupper() for word in match.group(1).split()):
        return None
    return match.group(1).strip(), match.group(2).strip()


def _complete(line: str) -> bool:
    """True when a line ends like a sentence (or a clause), not like a heading."""
    return bool(_ENDS_SENTENCE_RE.search(line.rstrip()))


def _continues(previous: str, raw: str) -> bool:
    """True when `raw` carries on the line before it (hard-wrapped prose, indented items)."""
    if not previous or _BULLET_RE.match(raw) or _speaker(raw) or _LABEL_RE.match(raw):
        return False
    stripped = raw.lstrip()
    # Short lines without a full stop are headings; long ones were wrapped by an editor.
    return raw[:1].isspace() or stripped[:1].islower() or len(previous) >= WRAPPED_LINE_CHARS


def _lines(text: str) -> list[str]:
    """Logical lines: wrapped prose rejoined, list fragments kept with their 'Label:' line."""
    lines: list[str] = []
    previous = ""  # the raw line before, "" after a blank line
    intro = False
    for raw in text.splitlines():
        line = _BULLET_RE.sub("", raw).strip()
        if not line:
            previous, intro = "", False
            continue
        if _continues(previous, raw):
            lines[-1] += " " + line
            intro = False
        elif intro and _BULLET_RE.match(raw) and not _complete(line):
            # "We decided to stop Germany work:" says little without the list that follows;
            # items that are whole sentences stand on their own (the intro is their heading).
            lines[-1] += ("" if lines[-1].endswith(":") else ";") + " " + line
        else:
            lines.append(line)
            intro = line.endswith(":")
        previous = raw.rstrip()
    return lines


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage; a `Name: text` line passes its speaker to each sentence."""
    return [unit.text for unit in units(text)]


# A named tuple, not a frozen dataclass: an answer makes one per retrieved sentence, and a
# tuple is built several times faster.
class Unit(NamedTuple):
    """One sentence and where it stands in its passage."""

    text: str  # as quoted: "Speaker: sentence"
    body: str  # without the speaker
    speaker: str  # the `Name:` of its line, "" for prose
    line: int  # index of its logical line (a speaker turn, a paragraph, a list item)
    heading: bool  # a heading (or the passage's title): context for what follows, no excerpt
    title: bool = False  # the heading is the document's title

    @property
    def label(self) -> str:
        """A short `Label:` prefix (speaker, "Attendees", "Notes by"), "" for prose."""
        label, colon, _ = self.text.partition(": ")
        return label if colon and len(label.split()) <= LABEL_WORDS else ""


def _is_title(bare: str, title: str) -> bool:
    """`bare` (a line less its markdown heading marks) is the passage's title."""
    return bool(title) and bare.lower() in (title.lower(), f"title: {title.lower()}")


# `bare`: the line less its markdown heading marks; `spoken`: _speaker(bare).
def _is_heading(line: str, bare: str, spoken: tuple[str, str] | None, last: bool) -> bool:
    """A section heading or short `Action items:` intro before text (not the title)."""
    if last or spoken or _LABEL_RE.match(bare):
        return False
    if _MARKDOWN_HEADING_RE.match(line) or bare.endswith(":"):
        return len(bare.split()) <= HEADING_WORDS
    return not _complete(bare) and len(bare.split()) <= HEADING_WORDS


def units(text: str, title: str = "") -> list[Unit]:
    """The sentences of a passage in order; headings marked, speakers kept."""
    found: list[Unit] = []
    lines = _lines(text)
    for index, line in enumerate(lines):
        # Each line's markdown-less form and speaker, worked out once: the heading test
        # needs them and so does the sentence split.
        bare = _MARKDOWN_HEADING_RE.sub("", line).strip()
        spoken = _speaker(line)
        is_title = _is_title(bare, title)
        if is_title or _is_heading(
            line, bare, spoken if bare == line else _speaker(bare), last=index == len(lines) - 1
        ):
            found.append(Unit(bare, bare, "", index, heading=True, title=is_title))
            continue
        speaker, rest = spoken or ("", line)
        for part in _SENTENCE_END_RE.split(rest):
            part = part.strip()
            if WORD_RE.search(part):
                quoted = f"{speaker}: {part}" if speaker else part
                found.append(Unit(quoted, part, speaker, index, heading=False))
    return found
