"""Form parsing, mention detection, follow-ups and TwiML splitting."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bot.chat.mention import find_mention
from bot.followup import search_query
from bot.models import Turn
from bot.text import clean_text, mask_number
from bot.web.inbound import BadRequest, parse_form
from bot.web.twiml import MAX_MESSAGE_CHARS, render, split_message
from tests.support import twilio_form

TRIGGERS = ("@agent", "@bot", "hey agent")


@pytest.mark.parametrize(
    ("body", "mentioned", "question"),
    [
        ("@agent what about Germany?", True, "what about Germany?"),
        ("@Agent, what about Germany?", True, "what about Germany?"),
        ("what about Germany @BOT", True, "what about Germany"),
        ("hey @agent: status?", True, "hey status?"),
        ("what about Germany?", False, "what about Germany?"),
        ("write to x@agent.org", False, "write to x@agent.org"),
        ("@agents unite", False, "@agents unite"),
        # Phrases: any case, any run of whitespace between the words, at word boundaries.
        ("hey agent, what about Germany?", True, "what about Germany?"),
        ("Hey  Agent, what about Germany?", True, "what about Germany?"),
        ("HEY\tagent\nwhat about Germany?", True, "what about Germany?"),
        ("so, hey agent: status?", True, "so, status?"),
        ("they agents met", False, "they agents met"),
        ("hey agents, come", False, "hey agents, come"),
        ("hey there agent", False, "hey there agent"),
        ("heyagent status", False, "heyagent status"),
        ("hey", False, "hey"),
    ],
)
def test_find_mention(body, mentioned, question):
    assert find_mention(body, TRIGGERS) == (mentioned, question)


def test_a_phrase_trigger_stays_fast_on_hostile_whitespace():
    # "hey" then a huge run of whitespace and no "agent": the match must give up in linear
    # time, not backtrack per character pair (a 64 KiB body is the most Twilio can send).
    body = ("hey " + " \t" * 20_000 + "x ") * 2
    assert find_mention(body, TRIGGERS)[0] is False


def test_parse_form_normalises_and_ignores_unknown_fields():
    form = twilio_form("  @agent hi\u200b\u202e  ", sender="whatsapp:+44 7700-900001", Foo="x")
    message = parse_form(form)
    assert message.sender == "whatsapp:+447700900001"
    assert message.body == "@agent hi"
    assert message.conversation == message.sender
    assert not message.is_group


@pytest.mark.parametrize(
    ("sent", "sender"),
    [
        ("whatsapp:+447700900001", "whatsapp:+447700900001"),
        ("WhatsApp:+44 7700 900001", "whatsapp:+447700900001"),
        ("+447700900001", "sms:+447700900001"),  # Twilio's SMS webhooks: no channel prefix
        ("sms:+447700900001", "sms:+447700900001"),
        ("messenger:1234567890", "messenger:1234567890"),
    ],
)
def test_the_channel_is_part_of_the_sender(sent, sender):
    assert parse_form(twilio_form("hi", sender=sent)).sender == sender


def test_parse_form_marks_groups_only_when_twilio_does():
    assert parse_form(twilio_form("hi", ConversationSid="CH123")).is_group
    assert not parse_form(twilio_form("hi, group of friends")).is_group


def test_parse_form_keeps_each_media_url_beside_its_content_type():
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME"
    form = twilio_form(
        "",
        NumMedia="4",
        MediaUrl0=f" {media}0 ",
        MediaContentType0="audio/ogg",
        MediaContentType1="image/jpeg",  # no MediaUrl1: skipped
        MediaUrl2=media + "2" * 600,  # too long to be Twilio's: kept as "" (refused later)
        MediaContentType2="application/pdf",
        MediaUrl3=f"{media}3",
        MediaContentType3="text/plain\x00",
        MediaUrl4=f"{media}4",  # beyond NumMedia
    )
    message = parse_form(form)
    assert message.media_urls == (f"{media}0", "", f"{media}3")
    assert message.media_types == ("audio/ogg", "application/pdf", "text/plain")
    assert message.num_media == 4


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
def test_parse_form_requires_sender_and_sid(missing):
    form = twilio_form("hi")
    form.pop(missing)
    form.pop("SmsMessageSid")
    with pytest.raises(BadRequest):
        parse_form(form)


def test_clean_text_keeps_emoji_and_rtl_text():
    assert clean_text("👩‍💻 مرحبا\x00\x07 ok") == "👩‍💻 مرحبا ok"


def test_mask_number_keeps_only_the_ends():
    assert mask_number("whatsapp:+447700900123") == "+44******0123"


def test_follow_up_borrows_the_previous_question():
    turns = [Turn("user", "what did we decide about Germany?"), Turn("assistant", "...")]
    assert "Germany" in search_query("why was that decided?", turns)
    assert search_query("what is the UK timeline?", turns) == "what is the UK timeline?"


def test_split_prefers_paragraphs_and_respects_limits():
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(8)]
    parts = split_message("\n\n".join(paragraphs), max_messages=10)
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)
    n = len(parts)
    assert n > 1
    # Numbered, because Twilio may deliver the messages in any order; cut between paragraphs.
    assert all(p.startswith(f"({i}/{n}) Paragraph") for i, p in enumerate(parts, start=1))
    assert "".join(parts).count("Paragraph") == 8


def test_a_reply_that_fits_one_message_is_not_numbered():
    text = "x" * MAX_MESSAGE_CHARS
    assert split_message(text, max_messages=3) == [text]
    assert split_message("Short answer.", max_messages=3) == ["Short answer."]


def test_numbered_parts_put_back_in_order_give_the_whole_text():
    sentences = [f"Sentence number {i} says something useful." for i in range(120)]
    parts = split_message(" ".join(sentences), max_messages=10)
    shuffled = parts[::-1]  # as a phone may receive them
    restored = sorted(shuffled, key=lambda p: int(re.match(r"\((\d+)/", p).group(1)))
    bodies = [re.sub(r"^\(\d+/\d+\) ", "", p) for p in restored]
    assert " ".join(bodies).split() == " ".join(sentences).split()
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)


def test_split_caps_the_number_of_messages_and_says_so():
    parts = split_message("sentence. " * 2000, max_messages=2)
    assert len(parts) == 2
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)
    assert parts[0].startswith("(1/2) ") and parts[1].startswith("(2/2) ")
    assert parts[-1].endswith("ask a narrower question for more.)")


def test_split_breaks_an_endless_word():
    parts = split_message("x" * 4000, max_messages=5)
    assert [len(p) for p in parts] == [1600, 1600, 818]  # "(n/3) " + up to 1,594 x
    assert "".join(re.sub(r"^\(\d/3\) ", "", p) for p in parts) == "x" * 4000


def test_render_drops_what_xml_forbids_and_keeps_the_rest():
    text = "C0\x00\x07\x1b, lone \ud800\udfff, \ufffe\uffff; kept: \t\n é 👩‍💻 \U0010fffd"
    (message,) = (el.text for el in ET.fromstring(render(text, 3)).iter("Message"))
    assert message == "C0, lone , ; kept: \t\n é 👩‍💻 \U0010fffd"


def test_render_empty_reply_is_an_empty_response():
    assert render("  ", 3).endswith("<Response />")
