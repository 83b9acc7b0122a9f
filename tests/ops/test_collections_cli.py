"""Collections from the CLI, on SQLite and on the graph: `ingest --collection` (new
documents in the configured default, stored ones kept, unchanged ones moved), `move`,
`documents`, `search --as SENDER` and `check`'s warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from tests.support import ALICE, BOB, SAMPLE

# Everyone reads "staff" (the default here, so not the built-in "general"); ALICE "board".
GRANTS = (("staff", ("*",)), ("board", (ALICE,)))
COLLECTIONS = {"knowledge_collections": GRANTS, "knowledge_default_collection": "staff"}
TIMELINE = "sample/uk-engagement-timeline.md"
UNEA = "sample/2026-03-04-unea-preparation-meeting.md"


def cli(app: Flask, *args: str, code: int = 0, input: str | None = None) -> str:
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def collections(app: Flask) -> dict[str, str]:
    """{source: collection} as `documents --json` lists them."""
    listed = json.loads(cli(app, "documents", "--json"))["documents"]
    return {d["source"]: d["collection"] for d in listed}


def minutes(tmp_path: Path) -> Path:
    """A folder of two board minutes."""
    folder = tmp_path / "board-minutes"
    folder.mkdir()
    (folder / "february.md").write_text("# February minutes\n\nThe board approved the audit.\n")
    (folder / "march.md").write_text("# March minutes\n\nThe board approved the zebra fund.\n")
    return folder


def test_new_documents_go_to_the_default_and_stored_ones_stay_where_they_are(
    make_app, knowledge, tmp_path
) -> None:
    app = make_app(ingest=False, **knowledge, **COLLECTIONS)
    cli(app, "ingest", str(SAMPLE))
    assert set(collections(app).values()) == {"staff"}
    board = minutes(tmp_path)
    added = cli(app, "ingest", "--collection", "board", str(board))
    assert "Ingested 2 new and 0 changed documents into board (" in added
    # Ingested again without the option: the changed file stays in board, a new one
    # goes to the default.
    (board / "march.md").write_text("# March minutes\n\nThe board approved the otter fund.\n")
    (board / "april.md").write_text("# April minutes\n\nThe board met.\n")
    again = cli(app, "ingest", str(board))
    assert "Ingested 1 new and 1 changed documents (" in again and "Moved" not in again
    assert {s: c for s, c in collections(app).items() if s.startswith("board-minutes/")} == {
        "board-minutes/april.md": "staff",
        "board-minutes/february.md": "board",
        "board-minutes/march.md": "board",
    }


def test_a_board_file_renamed_or_sent_again_stays_in_board(make_app, knowledge, tmp_path) -> None:
    """A new document whose bytes a stored one already holds goes where that one is, not to
    the default everyone reads: a renamed file ingested with --prune, a copy elsewhere."""
    app = make_app(ingest=False, **knowledge, **COLLECTIONS)
    board = minutes(tmp_path)
    cli(app, "ingest", "--collection", "board", str(board))
    (board / "2026").mkdir()
    (board / "march.md").rename(board / "2026" / "march.md")
    copy = tmp_path / "copies"
    copy.mkdir()
    (copy / "zebra.md").write_bytes((board / "2026" / "march.md").read_bytes())
    (copy / "new.md").write_text("# Staff picnic\n\nIn June.\n")
    cli(app, "ingest", "--prune", str(board))
    cli(app, "ingest", str(copy))
    assert {s: c for s, c in collections(app).items()} == {
        "board-minutes/2026/march.md": "board",
        "board-minutes/february.md": "board",
        "copies/new.md": "staff",
        "copies/zebra.md": "board",
    }


def test_ingest_with_a_collection_moves_unchanged_documents_and_says_so(
    make_app, knowledge
) -> None:
    app = make_app(ingest=False, **knowledge, **COLLECTIONS)
    cli(app, "ingest", str(SAMPLE))
    store = app.extensions["bot"].knowledge
    version = store.version()
    moved = cli(app, "ingest", "--collection", "board", str(SAMPLE / "uk-engagement-timeline.md"))
    assert "Ingested 0 new and 0 changed documents into board (" in moved
    assert "1 unchanged skipped" in moved
    assert f"Moved {TIMELINE} from staff to board (unchanged)." in moved.splitlines()
    assert collections(app)[TIMELINE] == "board" and store.version() != version
    # The whole folder: the four others move, and then nothing is left to move.
    whole = cli(app, "ingest", "--collection", "board", str(SAMPLE))
    assert whole.count("Moved sample/") == 4 and f"Moved {TIMELINE}" not in whole
    version = store.version()
    assert "Moved" not in cli(app, "ingest", "--collection", "board", str(SAMPLE))
    assert store.version() == version  # nothing moved: the answer cache stays valid
    listing = cli(app, "documents")
    assert f"{TIMELINE}  'UK engagement timeline 2025-2026'  " in listing
    assert all(line.endswith("  #board") for line in listing.splitlines()[:-1])
    assert listing.splitlines()[-1].endswith("; #board 5.")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (
            "Board",
            "--collection 'Board': expected a collection name of lower-case letters, digits, "
            "- and _ (up to 40), such as board",
        ),
        (
            "finance",
            "--collection 'finance': not one of knowledge.collections (staff, board); add it "
            "there first",
        ),
    ],
)
def test_ingest_refuses_a_wrong_collection_in_one_line(make_app, name, error) -> None:
    app = make_app(ingest=False, **COLLECTIONS)
    output = cli(app, "ingest", "--collection", name, str(SAMPLE), code=1)
    assert output.splitlines() == [f"Error: {error}"]
    assert app.extensions["bot"].knowledge.documents() == []


def test_move_puts_documents_in_a_collection_and_names_what_it_moved(make_app, knowledge) -> None:
    app = make_app(ingest=False, **knowledge, **COLLECTIONS)
    cli(app, "ingest", str(SAMPLE))
    moved = cli(app, "move", "--collection", "board", "UNEA-8 preparation meeting", TIMELINE)
    assert moved.splitlines() == [
        f"Moved {UNEA}  'UNEA-8 preparation meeting'  from staff to board",
        f"Moved {TIMELINE}  'UK engagement timeline 2025-2026'  from staff to board",
        "2 document(s) moved to board.",
    ]
    store = app.extensions["bot"].knowledge
    version = store.version()
    again = cli(app, "move", "--collection", "board", TIMELINE)
    assert again.splitlines() == [
        f"Already in board: {TIMELINE}  'UK engagement timeline 2025-2026'",
        "0 document(s) moved to board.",
    ]
    assert store.version() == version  # nothing moved: no new version
    # A collection as a target: everything in it.
    back = cli(app, "move", "--collection", "staff", "#board")
    assert back.splitlines()[-1] == "2 document(s) moved to staff."
    assert set(collections(app).values()) == {"staff"}
    missing = cli(app, "move", "--collection", "board", "#boards", "sample/", code=1)
    assert "no stored document matches '#boards'; nothing was moved" in missing
    assert set(collections(app).values()) == {"staff"}
    wrong = cli(app, "move", "--collection", "hr", "sample/", code=1)
    assert "Error: --collection 'hr': not one of knowledge.collections" in wrong


def test_search_as_a_sender_shows_only_what_they_may_read(make_app, knowledge) -> None:
    app = make_app(ingest=False, **knowledge, **COLLECTIONS)
    cli(app, "ingest", str(SAMPLE))
    cli(app, "move", "--collection", "board", TIMELINE)
    question = "UK engagement timeline parliamentary briefing"
    bob = cli(app, "search", question, "--as", "+44 7700-900002")
    assert bob.splitlines()[0] == f"As {BOB}: searching staff."
    assert "UK engagement timeline" not in bob
    alice = cli(app, "search", question, "--as", ALICE)
    assert alice.splitlines()[0] == f"As {ALICE}: searching board, staff."
    assert "[1] UK engagement timeline 2025-2026" in alice
    [shown] = [json.loads(cli(app, "search", question, "--json", "--as", BOB))]
    assert (shown["as"], shown["collections"]) == (BOB, ["staff"])
    assert shown["passages"] and not [
        p for p in shown["passages"] if "UK engagement timeline" in p["source"]
    ]
    batch = cli(app, "search", "--as", ALICE, input=f"{question}\nwho attended UNEA?\n")
    lines = [json.loads(line) for line in batch.splitlines()]
    assert [line["collections"] for line in lines] == [["board", "staff"]] * 2
    assert "UK engagement timeline" in lines[0]["passages"][0]["source"]


def test_search_as_a_refused_sender_finds_nothing(make_app) -> None:
    app = make_app(**COLLECTIONS)  # allowed_senders ["*"]: every WhatsApp sender, no SMS
    refused = cli(app, "search", "who attended the UNEA meeting?", "--as", "sms:+447700900002")
    assert refused.splitlines() == [
        "As sms:+447700900002: not allowed to ask (whatsapp.allowed_senders), so nothing.",
        "No passages found.",
    ]
    wrong = cli(app, "search", "UNEA", "--as", "07700 900002", code=1)
    assert len(wrong.splitlines()) == 1 and "Error: --as '07700 900002': expected E.164" in wrong
    everyone = cli(app, "search", "UNEA", "--as", "*", code=1)
    assert everyone.splitlines() == ["Error: --as '*': expected one sender's number"]


def test_search_as_without_collections_searches_everything(make_app) -> None:
    output = cli(make_app(), "search", "who attended the UNEA meeting?", "--as", BOB)
    assert output.splitlines()[0] == (
        f"As {BOB}: every collection (knowledge.collections is not set)."
    )
    assert "[1] UNEA-8 preparation meeting" in output


def check(app: Flask) -> list[str]:
    """`check`'s warnings (it exits 1 here: the test token is not Twilio-shaped)."""
    lines = app.test_cli_runner().invoke(args=["check"]).output.splitlines()
    return [line for line in lines if line.startswith("WARNING")]


def test_check_warns_of_empty_collections_and_of_documents_nobody_reads(
    make_app, knowledge, settings_for
) -> None:
    grants = (*GRANTS, ("hr", ()))
    app = make_app(ingest=False, **knowledge, **{**COLLECTIONS, "knowledge_collections": grants})
    cli(app, "ingest", str(SAMPLE))
    empty = "WARNING collection {0} of knowledge.collections holds no document: flask --app " + (
        "app ingest --collection {0} PATH (or move) puts documents there"
    )
    assert empty.format("board") in check(app) and empty.format("hr") in check(app)
    cli(app, "move", "--collection", "hr", TIMELINE)
    unread = (
        "WARNING 1 document(s) in collection hr, which nobody may read (nobody is listed for "
        "it in knowledge.collections): add it there, or flask --app app move --collection "
        "NAME '#hr'"
    )
    assert unread in check(app) and empty.format("hr") not in check(app)
    # The same store, with hr left out of the configuration.
    data_dir = app.extensions["bot"].settings.data_dir
    other = make_app(ingest=False, data_dir=data_dir, **knowledge, **COLLECTIONS)
    assert unread.replace("nobody is listed for it in", "it is not in") in check(other)
    # Without collections configured, none of it.
    plain = make_app(ingest=False, data_dir=data_dir, **knowledge)
    assert not [line for line in check(plain) if "collection" in line]
