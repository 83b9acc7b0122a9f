"""`flask --app app search`: what retrieval returns for a question, for everyone or, with
`--as SENDER`, from only the collections that sender may read (as the bot would search)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import click
from flask.cli import with_appcontext

from bot import config_values
from bot.deadline import Deadline
from bot.knowledge.store import Readable
from bot.models import Passage
from bot.web.services import current

CLI_SEARCH_SECONDS = 30.0


@dataclass(frozen=True)
class Reader:
    """Whom `search --as` searches for: the normalised sender ("" for nobody in
    particular), the collections they read (None: all) and the line that says so."""

    sender: str = ""
    collections: Readable = None
    line: str = ""


def _reader(sender: str | None) -> Reader:
    """`--as SENDER` read as config.json reads a sender; one the bot refuses reads nothing."""
    if sender is None:
        return Reader()
    try:
        who = config_values.sender(sender)
    except ValueError as exc:
        raise click.ClickException(f"--as {sender!r}: expected {exc}") from None
    if who == "*":
        raise click.ClickException("--as '*': expected one sender's number")
    services = current()
    if not services.access.allows(who):
        line = f"As {who}: not allowed to ask (whatsapp.allowed_senders), so nothing."
        return Reader(who, frozenset(), line)
    readable = services.settings.readers.readable(who)
    if readable is None:
        return Reader(who, None, f"As {who}: every collection (knowledge.collections is not set).")
    searched = ", ".join(sorted(readable)) or "no collection (knowledge.collections grants none)"
    return Reader(who, readable, f"As {who}: searching {searched}.")


def _search(question: str, k: int, reader: Reader) -> list[Passage]:
    """The passages retrieval gives, from the reader's collections only."""
    if reader.collections is not None and not reader.collections:
        return []  # reads nothing, so no query at all
    deadline = Deadline(CLI_SEARCH_SECONDS)
    return current().knowledge.search(question, k, deadline, reader.collections)


def _search_json(question: str, k: int, reader: Reader) -> str:
    passages = _search(question, k, reader)
    shown: dict[str, Any] = {"question": question}
    if reader.sender:
        shown["as"] = reader.sender
        shown["collections"] = None if reader.collections is None else sorted(reader.collections)
    shown["passages"] = [
        {"text": p.text, "source": p.source, "score": float(p.score)} for p in passages
    ]
    return json.dumps(shown, ensure_ascii=False)


@click.command("search")
@with_appcontext
@click.argument("question", required=False)
@click.option("--k", "k", default=None, type=click.IntRange(1, 1000), help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
@click.option(
    "--as",
    "sender",
    default=None,
    help="Only what this sender may read (a number as config.json lists it).",
)
def search_command(question: str | None, k: int | None, as_json: bool, sender: str | None) -> None:
    """Show what retrieval returns; with no QUESTION, one question per stdin line -> JSON lines."""
    k = k or current().settings.context_limit
    reader = _reader(sender)
    if question is None:
        for text in sys.stdin:
            if text.strip():
                click.echo(_search_json(text.strip(), k, reader))
        return
    if as_json:
        click.echo(_search_json(question, k, reader))
        return
    if reader.line:
        click.echo(reader.line)
    passages = _search(question, k, reader)
    if not passages:
        click.echo("No passages found.")
    for rank, passage in enumerate(passages, 1):
        click.echo(f"[{rank}] {passage.source}  (score {passage.score:.3f})")
        click.echo("    " + passage.text[:300].replace("\n", "\n    "))
