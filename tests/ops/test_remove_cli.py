"""`documents`, `remove` and `ingest --prune` from the CLI, on SQLite and on the graph:
the bundled sample goes, the team's own documents stay, and no answer made from a removed
document is served from the answer cache."""

from __future__ import annotations

import json

from bot.texts import NOTHING_FOUND
from tests.support import ALICE, BOB, CAROL, QUESTION, SAMPLE, Worker

SAMPLE_WARNING = "remove them with flask --app app remove sample/"


def cli(worker: Worker, *args: str, code: int = 0) -> str:
    result = worker.app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == code, result.output
    return result.output


def check(worker: Worker) -> str:
    """`check`'s report (it exits 1 here: the test token is not Twilio-shaped)."""
    return worker.app.test_cli_runner().invoke(args=["check"]).output


def passages(worker: Worker, question: str) -> list[dict]:
    return json.loads(cli(worker, "search", question, "--json", "--k", "20"))["passages"]


def test_remove_the_sample_and_prune_a_folder(spied_app, signed_post, knowledge, tmp_path) -> None:
    worker = Worker(spied_app, signed_post, ingest=False, **knowledge)
    notes = tmp_path / "team-notes"
    notes.mkdir()
    (notes / "zebra-fund.md").write_text("# Zebra fund\n\nThe zebra fund audit starts in May.\n")
    (notes / "otter-review.txt").write_text("Title: Otter review\nThe otter review is done.\n")
    cli(worker, "ingest", str(SAMPLE))
    assert SAMPLE_WARNING not in check(worker)  # the sample alone is a demo
    cli(worker, "ingest", str(notes))
    assert SAMPLE_WARNING in check(worker)

    listed = json.loads(cli(worker, "documents", "--json"))
    assert listed["total"]["documents"] == 7
    sample_titles = {d["title"] for d in listed["documents"] if d["source"].startswith("sample/")}
    assert len(sample_titles) == 5
    text = cli(worker, "documents")
    assert "team-notes/zebra-fund.md  'Zebra fund'  1 chunk, ingested 20" in text
    assert text.splitlines()[-1].startswith("7 document(s), ")

    first = worker.ask(QUESTION, ALICE)
    assert "Amara Okafor" in first  # from the fictional UNEA meeting
    assert worker.ask(QUESTION, BOB) == first and worker.work == (1, 1)  # cached

    removed = cli(worker, "remove", "sample/")
    assert removed.count("Removed sample/") == 5
    assert removed.splitlines()[-1] == "5 document(s) removed."
    for question in (QUESTION, "UK timeline", "Germany budget meeting notes handbook"):
        assert not [p for p in passages(worker, question) if p["source"] in sample_titles]
    assert "zebra fund audit" in passages(worker, "zebra audit")[0]["text"]
    assert SAMPLE_WARNING not in check(worker)

    # Searched afresh, not answered from the cache: nothing found, no answerer asked.
    assert worker.ask(QUESTION, CAROL) == NOTHING_FOUND and worker.work == (2, 1)

    (notes / "otter-review.txt").unlink()
    pruned = cli(worker, "ingest", "--prune", str(notes))
    assert "Removed team-notes/otter-review.txt: its file is gone." in pruned
    sources = [d["source"] for d in json.loads(cli(worker, "documents", "--json"))["documents"]]
    assert sources == ["team-notes/zebra-fund.md"]
    assert passages(worker, "otter review") == []
    assert passages(worker, "zebra audit")


def test_remove_names_what_matched_nothing_and_removes_nothing(make_app) -> None:
    runner = make_app().test_cli_runner()
    result = runner.invoke(args=["remove", "UNEA-8 preparation meeting", "samples/"])
    assert result.exit_code == 1
    assert "no stored document matches 'samples/'; nothing was removed" in result.output
    listed = json.loads(runner.invoke(args=["documents", "--json"]).output)
    assert listed["total"]["documents"] == 5
    by_title = runner.invoke(args=["remove", "UNEA-8 preparation meeting"])
    assert by_title.exit_code == 0, by_title.output
    assert "Removed sample/2026-03-04-unea-preparation-meeting.md" in by_title.output
