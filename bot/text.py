"""Text helpers shared by the layers: no Flask, no drivers."""

from __future__ import annotations

import re

# Characters XML 1.0 forbids (C0 controls but tab, newline and return; lone surrogates;
# U+FFFE/U+FFFF). One of them in a reply makes the TwiML ill-formed, and Twilio then drops
# the whole reply; a lone surrogate cannot even be encoded as UTF-8 for the database.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters an XML 1.0 document cannot carry."""
    return _NOT_XML.sub("", text)
