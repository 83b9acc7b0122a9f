"""Documents from the phone, through the whole app: Twilio-signed webhooks, the media
download from a local stand-in of Twilio's media endpoint (Basic auth, a redirect to a CDN
stand-in), ingest into the real SQLite store, and the answers that follow."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from bot import create_app
from bot.chat.add_outcomes import STALE_SECONDS, AddOutcomes
from bot.chat.captions import AddRequest, add_request, slug
from bot.deadline import Deadline
from bot.knowledge.ingest import ingest_paths
from bot.media.kinds import DOCX
from bot.texts import (
    DOCUMENT_HINT,
    DOCUMENT_REFUSED,
    DOCUMENT_UNSUPPORTED,
    DOCUMENT_WRONG_TYPE,
)
from tests.fakes.twilio_media import ACCOUNT_SID, Served, media_path, redirect
from tests.office_files import BOARD_MINUTES, docx_bytes, encrypted_pdf, pdf_bytes
from tests.support import (
    ALICE,
    APP_MEDIA_AUTH,
    BOB,
    CAROL,
    SAMPLE,
    reply_texts_of,
    twilio_form,
)

PDF = "application/pdf"
MINUTES = pdf_bytes(BOARD_MINUTES, title="Board minutes March")
NAIROBI = "@agent What budget did the board approve for the Nairobi office?"
_media_numbers = itertools.count(1)


class GatedOcr:
    """An Ocr (bot/ocr.py) that reads each page as `pages` says, once `gate` is open."""

    name = "gated"

    def __init__(self, pages: list[str]) -> None:
        self.pages = pages
        self.gate = threading.Event()
        self.calls = 0

    def read_pdf(self, data: bytes, pages: int, deadline: Deadline) -> list[str]:
        self.calls += 1
        assert self.gate.wait(10), "the test never opened the gate"
        return self.pages[:pages]

    def close(self) -> None:
        pass


@pytest.fixture
def make_bot(settings_for, twilio_api) -> Iterator[Callable[..., Flask]]:
    """Factory: an app with the sample knowledge, ALICE its admin, media from the stand-in;
    `ocr` reads scans; settings as keyword overrides. Adds still running end before close."""
    apps: list[Flask] = []

    def build(ocr=None, **overrides) -> Flask:
        values = {
            "admin_senders": (ALICE,),
            "twilio_media_base_url": twilio_api.base_url,
            "twilio_account_sid": ACCOUNT_SID,
            **overrides,
        }
        app = create_app(settings_for(**values), ocr=ocr)
        app.config["TESTING"] = True
        ingest_paths(app.extensions["bot"].knowledge, [str(SAMPLE)], progress=False)
        apps.append(app)
        return app

    yield build
    for app in apps:
        inbox(app).wait(10)
        app.extensions["bot"].close()


def inbox(app: Flask):
    return app.extensions["bot"].handler.media.document


def knowledge(app: Flask):
    return app.extensions["bot"].knowledge


def phone_sources(app: Flask) -> list[str]:
    return [d.source for d in knowledge(app).documents() if d.source.startswith("whatsapp/")]


@pytest.fixture
def send(signed_post, twilio_api, cdn) -> Callable[..., list[str]]:
    """Send a message to an app: text alone, or with a file published on the stand-ins."""

    def post(app: Flask, body: str, sender: str = ALICE, file: bytes | None = None, type=PDF):
        extra = {}
        if file is not None:
            number = next(_media_numbers)
            on_cdn = cdn.serve(f"/file/{number}", Served(body=file))
            url = twilio_api.serve(media_path(number), redirect(on_cdn))
            extra = {"NumMedia": "1", "MediaUrl0": url, "MediaContentType0": type}
        form = twilio_form(body, sender, **extra)
        return reply_texts_of(signed_post(app.test_client(), form))

    return post


def test_an_admin_adds_a_pdf_and_a_question_is_answered_from_it(make_bot, send, twilio_api, cdn):
    app = make_bot()
    [before] = send(app, NAIROBI, BOB)  # answered from the sample notes, and cached
    assert "40,000" not in before
    started = time.monotonic()
    assert send(app, "@agent add", file=MINUTES) == ["Added Board minutes March: 3 passages"]
    assert time.monotonic() - started < 5  # the request's deadline (settings_for: 5 s)
    assert [seen.authorization for seen in twilio_api.seen] == [APP_MEDIA_AUTH]
    assert [seen.authorization for seen in cdn.seen] == [None]  # the credentials stay put
    assert phone_sources(app) == ["whatsapp/board-minutes-march"]
    # CAROL's first question is served from the cache when the knowledge is unchanged: the
    # add changed its version, so the answer comes from the new document, with its page.
    [after] = send(app, NAIROBI, CAROL)
    assert "40,000 euros" in after
    assert "Board minutes March, p. 2" in after.rpartition("Sources:")[2]


def test_the_same_file_again_changes_nothing_and_a_new_version_replaces_the_old(make_bot, send):
    app = make_bot()
    send(app, "@agent add", file=MINUTES)
    counts, version = knowledge(app).counts(), knowledge(app).version()
    again = send(app, "@agent add", file=MINUTES)
    assert again == ["Board minutes March is already in the knowledge base."]
    assert (knowledge(app).counts(), knowledge(app).version()) == (counts, version)

    first = pdf_bytes([["The travel budget is 9,000 euros."]])
    assert send(app, "@agent add Budget notes", file=first) == ["Added Budget notes: 1 passage"]
    assert send(app, "add Budget notes", file=first) == [
        "Budget notes is already in the knowledge base."
    ]
    # A changed file with the same title, here a Word file: the one document is replaced.
    second = docx_bytes([("", "The travel budget is 14,000 euros."), ("", "Hotels included.")])
    assert send(app, "@agent add: Budget notes", file=second, type=DOCX) == [
        "Updated Budget notes: 1 passage (the earlier version is replaced)"
    ]
    assert phone_sources(app) == ["whatsapp/board-minutes-march", "whatsapp/budget-notes"]
    found = knowledge(app).search("travel budget euros", 5, Deadline(5))
    [text] = [p.text for p in found if p.title == "Budget notes"]
    assert "14,000 euros" in text and "Hotels included." in text
    assert knowledge(app).counts()["chunks"] == counts["chunks"] + 1


def test_a_non_admins_document_is_refused_unread_and_nothing_is_stored(
    make_bot, send, twilio_api, cdn
):
    app = make_bot()
    before = knowledge(app).documents(), knowledge(app).version()
    assert send(app, "@agent add", BOB, file=MINUTES) == [DOCUMENT_REFUSED]
    assert send(app, "", BOB, file=MINUTES) == [DOCUMENT_REFUSED]
    assert twilio_api.seen == [] and cdn.seen == []  # not even downloaded
    assert (knowledge(app).documents(), knowledge(app).version()) == before
    assert not (Path(app.extensions["bot"].settings.data_dir) / "pending-adds").exists()
    # An admin's document without "add" gets the hint, and is not downloaded either.
    assert send(app, "Board minutes", file=MINUTES) == [DOCUMENT_HINT.format(trigger="@agent")]
    assert twilio_api.seen == [] and phone_sources(app) == []


def test_other_attachments_captioned_add_say_what_can_be_added(make_bot, send, twilio_api) -> None:
    app = make_bot()
    sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert send(app, "@agent add", file=b"PK\x03\x04sheet", type=sheet) == [DOCUMENT_UNSUPPORTED]
    assert send(app, "add Budget", file=b"\x89PNG\r\n", type="image/png") == [DOCUMENT_UNSUPPORTED]
    assert send(app, "@agent add", BOB, file=b"\x89PNG\r\n", type="image/png") == [DOCUMENT_REFUSED]
    # A photo whose caption is a question is answered as the question, from anyone.
    [answer] = send(
        app, "@agent who attended the UNEA meeting?", BOB, file=b"\x89PNG", type="image/png"
    )
    assert "Amara Okafor" in answer
    assert twilio_api.seen == [] and phone_sources(app) == []


def test_a_slow_add_replies_in_time_and_the_next_reply_tells_how_it_went(make_bot, send):
    ocr = GatedOcr(["# Receipts March\n\nThe taxi to the airport cost 40 euros.", ""])
    app = make_bot(ocr=ocr, response_timeout_seconds=2.0)
    started = time.monotonic()
    reply = send(app, "@agent add Receipts March", file=pdf_bytes([None, None]))
    assert reply == ["Adding Receipts March… I'll tell you how it went with your next reply."]
    assert time.monotonic() - started < 2.0
    assert ocr.calls == 1
    [waiting] = send(app, "@agent help")
    assert waiting.startswith("Still adding Receipts March…\n\n*Hi!")
    ocr.gate.set()
    assert inbox(app).wait(5)
    # The next message reaches another worker (another app on the same data dir).
    other = make_bot(ocr=ocr, data_dir=app.extensions["bot"].settings.data_dir)
    [told] = send(other, "@agent how much did the taxi to the airport cost?")
    outcome, _, answer = told.partition("\n\n")
    assert outcome == "Added Receipts March: 1 passage"
    assert "40 euros" in answer and "Receipts March, p. 1" in answer
    [later] = send(app, "@agent help")  # told once, in whichever worker
    assert later.startswith("*Hi!")


def test_broken_and_protected_pdfs_get_a_clear_reply_and_nothing_is_stored(make_bot, send):
    app = make_bot()
    before = knowledge(app).version()
    locked = encrypted_pdf(MINUTES, user_password="board-only")
    assert send(app, "@agent add Board minutes", file=locked) == [
        "I couldn't add Board minutes: password-protected: remove the password and ingest it again."
    ]
    [broken] = send(app, "@agent add", file=MINUTES[: len(MINUTES) // 2])
    assert broken.startswith("I couldn't add your document: not a readable PDF (")
    # Bytes that are no PDF at all are refused by the download's type check.
    assert send(app, "@agent add", file=b"hello, world", type=PDF) == [DOCUMENT_WRONG_TYPE]
    assert knowledge(app).version() == before and phone_sources(app) == []


def test_a_scan_without_ocr_is_not_added_and_says_why(make_bot, send):
    app = make_bot()
    [reply] = send(app, "@agent add Receipts", file=pdf_bytes([None]))
    assert reply.startswith("I couldn't add Receipts: no text layer (a scanned PDF?)")
    assert phone_sources(app) == []


def test_a_document_without_a_title_is_named_by_its_date_and_keyed_by_its_content(make_bot, send):
    app = make_bot()
    inbox(app).clock = lambda: 1772582400.0  # 2026-03-04 00:00 UTC
    long_line = "x " * 60  # too long to be a title
    untitled = pdf_bytes([[long_line, "We agreed on the logo."]])
    assert send(app, "add", file=untitled) == ["Added WhatsApp document 2026-03-04: 1 passage"]
    assert send(app, "add", file=untitled) == [
        "WhatsApp document 2026-03-04 is already in the knowledge base."
    ]
    other = pdf_bytes([[long_line, "We agreed on the colours."]])
    assert send(app, "add", file=other) == ["Added WhatsApp document 2026-03-04: 1 passage"]
    assert len(phone_sources(app)) == 2  # two untitled documents never replace each other
    markdown = b"# Logo decisions\n\nWe agreed on the green logo.\n"
    assert send(app, "@agent add this", file=markdown, type="text/markdown") == [
        "Added Logo decisions: 1 passage"
    ]


@pytest.mark.parametrize(
    ("caption", "asked"),
    [
        ("@agent add", ("", "")),
        ("add", ("", "")),
        ("@Agent ADD Board minutes March", ("Board minutes March", "")),
        ('@agent, add: "Board minutes"', ("Board minutes", "")),
        ("please add this document", ("", "")),
        ("@agent add it please", ("", "")),
        ("", None),
        ("Board minutes.pdf", None),
        ("@agent what does this say?", None),
        ("address list", None),
        ("@agent added", None),
        # A collection first: "#name", any case, then the title if any.
        ("@agent add #board Board minutes March", ("Board minutes March", "board")),
        ("add: #Board: Minutes", ("Minutes", "board")),
        ("@agent add #hr", ("", "hr")),
        ("add #hr. this please", ("", "hr")),
        ("add Minutes #3", ("Minutes #3", "")),  # later in the title, it is the title's
    ],
)
def test_the_caption_asks_to_add_with_or_without_a_title_and_collection(caption, asked):
    expected = None if asked is None else AddRequest(*asked)
    assert add_request(caption, ("@agent",)) == expected


# Everyone reads general; ALICE (the admin) also reads board.
COLLECTIONS = (("general", ("*",)), ("board", (ALICE,)))


def collection_of(app: Flask, source: str) -> str:
    [collection] = [d.collection for d in knowledge(app).documents() if d.source == source]
    return collection


def test_the_caption_names_the_collection_and_the_reply_says_where_it_went(make_bot, send):
    app = make_bot(knowledge_collections=COLLECTIONS)
    added = send(app, "@agent add #board Board minutes March", file=MINUTES)
    assert added == ["Added Board minutes March to board: 3 passages"]
    assert collection_of(app, "whatsapp/board-minutes-march") == "board"
    # What only board may read is not searched for general's readers.
    found = knowledge(app).search("Nairobi office budget", 5, Deadline(5), frozenset({"general"}))
    assert found and not [p for p in found if "Board minutes" in p.source]

    budget = pdf_bytes([["The travel budget is 9,000 euros."]])
    assert send(app, "@agent add Budget notes", file=budget) == [
        "Added Budget notes to general: 1 passage"
    ]
    # The same file with another collection moves it; without one it stays where it is.
    assert send(app, "@agent add #board Budget notes", file=budget) == [
        "Moved Budget notes from general to board (its content is unchanged)."
    ]
    assert send(app, "add Budget notes", file=budget) == [
        "Budget notes is already in the knowledge base, in board."
    ]
    changed = pdf_bytes([["The travel budget is 14,000 euros."]])
    assert send(app, "add Budget notes", file=changed) == [
        "Updated Budget notes in board: 1 passage (the earlier version is replaced)"
    ]
    assert collection_of(app, "whatsapp/budget-notes") == "board"


def test_a_new_document_without_a_collection_goes_to_the_configured_default(make_bot, send):
    app = make_bot(knowledge_collections=COLLECTIONS, knowledge_default_collection="board")
    markdown = b"# Logo decisions\n\nWe agreed on the green logo.\n"
    assert send(app, "@agent add", file=markdown, type="text/markdown") == [
        "Added Logo decisions to board: 1 passage"
    ]
    assert collection_of(app, "whatsapp/logo-decisions") == "board"


def test_a_collection_that_is_not_configured_is_refused_before_downloading(
    make_bot, send, twilio_api, cdn
):
    app = make_bot(knowledge_collections=COLLECTIONS)
    before = knowledge(app).version()
    assert send(app, "@agent add #finance Budget", file=MINUTES) == [
        "There is no collection #finance, so I haven't added this document. "
        "The collections are #general, #board."
    ]
    assert twilio_api.seen == [] and cdn.seen == []  # not even downloaded
    assert knowledge(app).version() == before and phone_sources(app) == []


def test_without_collections_configured_a_caption_may_still_name_one(make_bot, send, twilio_api):
    app = make_bot()
    assert send(app, "@agent add #board Board minutes March", file=MINUTES) == [
        "Added Board minutes March to board: 3 passages"
    ]
    assert collection_of(app, "whatsapp/board-minutes-march") == "board"
    assert send(app, "add #Bo@rd Budget", file=MINUTES) == [
        "#bo@rd can't name a collection (lower-case letters, digits, - and _, such as "
        "#board), so I haven't added this document."
    ]
    assert len(twilio_api.seen) == 1  # the refused one was not downloaded


def test_keys_are_made_of_the_title_in_any_script():
    assert slug("Board minutes: March!") == "board-minutes-march"
    assert slug("Compte rendu – réunion") == "compte-rendu-réunion"
    assert slug("🙂🙂") == ""


def test_an_outcome_is_told_once_and_an_add_that_outlived_its_worker_is_reported(tmp_path):
    now = [1000.0]
    outcomes = AddOutcomes.in_data_dir(tmp_path, clock=lambda: now[0])
    assert outcomes.take(ALICE) == ""  # no folder yet
    done, lost = outcomes.new_job(), outcomes.new_job()
    outcomes.started(ALICE, done, "Minutes")
    outcomes.started(ALICE, lost, "Budget")
    assert outcomes.take(ALICE) == "Still adding Minutes…\nStill adding Budget…"
    outcomes.finished(ALICE, done, "Added Minutes: 3 passages")
    assert outcomes.take(BOB) == ""  # each sender hears only of their own
    now[0] += STALE_SECONDS + 1
    assert outcomes.take(ALICE) == (
        "Added Minutes: 3 passages\n"
        "Adding Budget did not finish (I may have restarted). Please send it again."
    )
    assert outcomes.take(ALICE) == ""
    assert [p.name for p in (tmp_path / "pending-adds").iterdir()] == []
    assert "+44" not in "".join(p.name for p in tmp_path.rglob("*"))
