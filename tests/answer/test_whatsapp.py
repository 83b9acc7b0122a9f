"""Model text as WhatsApp replies: Markdown rewritten, sources named once."""

from __future__ import annotations

from bot.answer.whatsapp import to_whatsapp, with_sources
from bot.models import Passage


def test_whatsapp_conversion_and_sources_helpers():
    assert to_whatsapp("# Title #\ntext\n\n\n\n---\nmore") == "*Title*\ntext\n\nmore"
    table = "| Who | Role |\n|-----|:----:|\n| Amina | chair |"
    assert to_whatsapp(table) == "Who – Role\nAmina – chair"
    text, sources = with_sources("Answer.", [Passage("t", "A", 1), Passage("u", "A", 1)])
    assert text == "Answer.\n\nSources: A" and sources == ("A",)
    assert with_sources("Answer.", []) == ("Answer.", ())
