"""What an admin's caption asks for when they send a document: to add it ("@agent add"),
under which title ("add Board minutes March") and in which collection ("add #board Board
minutes March": the "#name" comes first, so a "#3" later in a title stays the title's)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.chat.mention import find_mention

MAX_TITLE_CHARS = 100
# "add", then an optional title, after any trigger word: "add: Board minutes".
_ADD = re.compile(r"(?:please\s+)?add(?:\s+|[:\-–—]\s*|$)(?P<title>.*)", re.IGNORECASE | re.DOTALL)
# What follows "add" without being a title: "add this", "add it please".
_NO_TITLE = re.compile(
    r"(?:(?:this|it|the|that)(?:\s+(?:document|file|one|pdf))?)?\s*(?:please)?[.!]*",
    re.IGNORECASE,
)
# A collection named first: "#board Board minutes", "#HR: Leave policy".
_TAG = re.compile(r"#(?P<name>[^\s,:;.!?]+)[\s,:;.!?]*(?P<rest>.*)", re.DOTALL)
_TRIM = "\"'“”‘’«» .!?"


@dataclass(frozen=True)
class AddRequest:
    """A caption that asks to add: the title it gives ("" for none) and the collection it
    names ("" for none; lower case, not yet checked against the configured ones)."""

    title: str = ""
    collection: str = ""


def add_request(body: str, trigger_words: tuple[str, ...]) -> AddRequest | None:
    """What a caption asks to add, or None when it does not ask: "@agent add #board Board
    minutes" -> AddRequest("Board minutes", "board"), "add" -> AddRequest(), "hi" -> None."""
    _, text = find_mention(body, trigger_words)
    match = _ADD.fullmatch(text.strip())
    if match is None:
        return None
    rest, collection = match["title"].strip(), ""
    if tag := _TAG.match(rest):
        rest, collection = tag["rest"], tag["name"].lower()
    title = " ".join(rest.split()).strip(_TRIM)
    title = "" if _NO_TITLE.fullmatch(title) else title[:MAX_TITLE_CHARS].rstrip()
    return AddRequest(title, collection)


def slug(title: str) -> str:
    """'Board minutes: March!' -> 'board-minutes-march' (letters of any script kept)."""
    return re.sub(r"[\W_]+", "-", title.lower()).strip("-")[:MAX_TITLE_CHARS]
