"""Flask CLI commands: ingest, documents, remove, chat, search, forget, stats, check."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict
from urllib.parse import urlencode

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from twilio.request_validator import RequestValidator

from bot.chat.commands import answers_text, feedback_text, seconds_text
from bot.deadline import Deadline
from bot.history.records import Feedback, UsageStats
from bot.settings import Settings
from bot.text import mask_number, normalise_number
from bot.web.blueprint import WEBHOOK_PATH
from bot.web.security import LOCAL_TOKEN_HEADER, SIGNATURE_HEADER, local_token
from bot.web.services import Services, current

DEFAULT_SENDER = "whatsapp:+15555550100"  # a fictional number (555-01xx is reserved)
SANDBOX_NUMBER = "whatsapp:+14155238886"
CLI_SEARCH_SECONDS = 30.0


def _services() -> Services:
    return current()


def build_form(settings: Settings, text: str, sender: str) -> dict[str, str]:
    """A form shaped like Twilio's inbound WhatsApp webhook."""
    sid = "SM" + uuid.uuid4().hex
    return {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": normalise_number(sender),
        "To": settings.whatsapp_number or SANDBOX_NUMBER,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "CLI",
        "WaId": normalise_number(sender).rpartition("+")[2],
    }


def reply_texts(twiml: str) -> list[str]:
    """The <Message> bodies of a TwiML document."""
    return [el.text or "" for el in ET.fromstring(twiml).iter("Message")]


def _post_http(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=urlencode(form).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 (user URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@click.command("chat")
@with_appcontext
@click.argument("text", nargs=-1, required=True)
@click.option("--sender", default=DEFAULT_SENDER, show_default=True, help="The From number.")
@click.option("--url", default=None, help="Send over HTTP to a running server's base URL.")
def chat_command(text: tuple[str, ...], sender: str, url: str | None) -> None:
    """Send TEXT through the real webhook (signed when a token is set) and print the reply."""
    settings = _services().settings
    form = build_form(settings, " ".join(text), sender)
    if url:
        target = url.rstrip("/") + WEBHOOK_PATH
    else:
        target = (settings.public_base_url or "http://localhost") + WEBHOOK_PATH
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if settings.local_mode:
        # The secret a local-mode server in this data directory expects (bot/security.py).
        headers[LOCAL_TOKEN_HEADER] = local_token(settings.data_dir)
    if settings.twilio_auth_token:
        signed = (settings.public_base_url + WEBHOOK_PATH) if settings.public_base_url else target
        validator = RequestValidator(settings.twilio_auth_token)
        headers[SIGNATURE_HEADER] = validator.compute_signature(signed, form)
    if url:
        status, body = _post_http(target, form, headers)
    else:
        client = current_app.test_client()
        response = client.post(
            WEBHOOK_PATH,
            data=form,
            headers=headers,
            base_url=target.removesuffix(WEBHOOK_PATH),
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        status, body = response.status_code, response.get_data(as_text=True)
    if status != 200:
        raise click.ClickException(f"the webhook answered HTTP {status}: {body.strip()}")
    messages = reply_texts(body)
    click.echo("\n\n".join(messages) if messages else "(no reply)")


@click.command("ingest")
@with_appcontext
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--prune", is_flag=True, help="Also remove documents of these folders whose file is gone."
)
def ingest_command(paths: tuple[str, ...], prune: bool) -> None:
    """Load documents and transcripts into the knowledge base (unchanged files are skipped)."""
    from bot.knowledge.ingest import ingest_paths

    summary = ingest_paths(
        _services().knowledge, list(paths), progress=sys.stderr.isatty(), prune=prune
    )
    click.echo(
        f"Ingested {summary.documents_added} new and {summary.documents_updated} changed "
        f"documents ({summary.chunks} chunks, {summary.people} people); "
        f"{summary.documents_skipped} unchanged skipped; {summary.seconds:.1f} s."
    )
    for source in summary.removed:
        click.echo(f"Removed {source}: its file is gone.")
    for error in summary.errors:
        click.echo(f"error: {error}", err=True)
    if summary.errors:
        sys.exit(1)


def _utc(seconds: float, layout: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return time.strftime(layout, time.gmtime(seconds)) if seconds else ""


def _chunks(n: int) -> str:
    return f"{n} chunk" + ("" if n == 1 else "s")


@click.command("documents")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def documents_command(as_json: bool) -> None:
    """List the documents in the knowledge base: source, title, chunks, when ingested."""
    from bot.errors import KnowledgeUnavailable

    try:
        documents = _services().knowledge.documents()
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    chunks = sum(d.chunks for d in documents)
    if as_json:
        listed = [{**asdict(d), "ingested_at": _utc(d.ingested_at)} for d in documents]
        total = {"documents": len(documents), "chunks": chunks}
        click.echo(json.dumps({"documents": listed, "total": total}, ensure_ascii=False))
        return
    for d in documents:
        at = _utc(d.ingested_at, "%Y-%m-%d %H:%M UTC") or "at an unknown time"
        click.echo(f"{d.source}  {d.title!r}  {_chunks(d.chunks)}, ingested {at}")
    click.echo(f"{len(documents)} document(s), {_chunks(chunks)}.")


@click.command("remove")
@with_appcontext
@click.argument("targets", nargs=-1, required=True)
def remove_command(targets: tuple[str, ...]) -> None:
    """Remove documents named by TARGET: a source or title exactly as `documents` lists it,
    or a folder such as sample/ (everything ingested from it)."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.catalog import select

    knowledge = _services().knowledge
    try:
        chosen, unmatched = select(knowledge.documents(), targets)
        if unmatched:
            raise click.ClickException(
                f"no stored document matches {', '.join(map(repr, unmatched))}; nothing "
                "was removed: give a source or title as `flask --app app documents` lists "
                "it, or a folder such as sample/"
            )
        removed = knowledge.remove(d.id for d in chosen)
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    for d in chosen:
        click.echo(f"Removed {d.source}  {d.title!r}  ({_chunks(d.chunks)})")
    click.echo(f"{removed} document(s) removed.")


def _search_json(question: str, k: int) -> str:
    passages = _services().knowledge.search(question, k, Deadline(CLI_SEARCH_SECONDS))
    return json.dumps(
        {
            "question": question,
            "passages": [
                {"text": p.text, "source": p.source, "score": float(p.score)} for p in passages
            ],
        },
        ensure_ascii=False,
    )


@click.command("search")
@with_appcontext
@click.argument("question", required=False)
@click.option("--k", "k", default=None, type=click.IntRange(1, 1000), help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
def search_command(question: str | None, k: int | None, as_json: bool) -> None:
    """Show what retrieval returns; with no QUESTION, one question per stdin line -> JSON lines."""
    k = k or _services().settings.context_limit
    if question is None:
        for line in sys.stdin:
            if line.strip():
                click.echo(_search_json(line.strip(), k))
        return
    if as_json:
        click.echo(_search_json(question, k))
        return
    passages = _services().knowledge.search(question, k, Deadline(CLI_SEARCH_SECONDS))
    if not passages:
        click.echo("No passages found.")
    for rank, passage in enumerate(passages, 1):
        click.echo(f"[{rank}] {passage.source}  (score {passage.score:.3f})")
        click.echo("    " + passage.text[:300].replace("\n", "\n    "))


@click.command("forget")
@with_appcontext
@click.argument("sender")
def forget_command(sender: str) -> None:
    """Delete SENDER's turns, feedback and cached answers (counts stay, anonymous)."""
    deleted = _services().history.forget(normalise_number(sender))
    click.echo(
        f"Deleted {deleted} stored rows for that sender (turns, feedback, cached answers); "
        "their question counts and message ids stay, without the number or any text."
    )


def stats_report(stats: UsageStats, feedback: list[Feedback], days: int, backend: str) -> dict:
    """`stats --json`: the admin's chat view as data, plus the recent feedback (masked)."""
    return {
        "days": days,
        "backend": backend,
        "questions": stats.questions,
        "questions_per_day": [
            {"day": d.day, "questions": d.questions, "senders": d.senders} for d in stats.days
        ],
        "active_senders": stats.active_senders,
        "answers": asdict(stats.answers),
        "median_answer_ms": stats.median_answer_ms,
        "top_questions": [{"question": q, "count": n} for q, n in stats.top_questions],
        "feedback": {
            "total": stats.feedback,
            "up": stats.thumbs_up,
            "down": stats.thumbs_down,
            "written": stats.feedback - stats.thumbs_up - stats.thumbs_down,
        },
        "recent_feedback": [
            {
                "sender": mask_number(f.sender),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(f.created_at)),
                "rating": f.rating,
                "text": f.text,
                "question": f.question,
            }
            for f in feedback
        ],
    }


@click.command("stats")
@with_appcontext
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
@click.option("--top", default=5, show_default=True, type=click.IntRange(0, 50))
@click.option(
    "--feedback",
    "feedback_limit",
    default=10,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many recent feedback entries to list.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def stats_command(days: int, top: int, feedback_limit: int, as_json: bool) -> None:
    """The team's usage over the last N days (what admins see in chat) and recent feedback."""
    from bot.errors import HistoryUnavailable

    history = _services().history
    deadline = Deadline(CLI_SEARCH_SECONDS)
    try:
        stats = history.stats(days, top, deadline)
        entries = history.recent_feedback(feedback_limit, deadline)
    except HistoryUnavailable as exc:
        raise click.ClickException(f"the history store is unavailable: {exc}") from None
    report = stats_report(stats, entries, days, history.backend)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    click.echo(f"Last {days} day(s), {history.backend} history store")
    click.echo(f"Questions: {stats.questions}")
    click.echo(f"Active senders: {stats.active_senders}")
    click.echo("Questions per day:")
    for day in stats.days:
        click.echo(f"  {day.day}  {day.questions} from {day.senders} sender(s)")
    click.echo(f"Answers: {answers_text(stats)}")
    click.echo(f"Median answer time: {seconds_text(stats.median_answer_ms)}")
    click.echo("Most asked questions:")
    for question, count in stats.top_questions:
        click.echo(f"  {count} x {question}")
    click.echo(f"Feedback: {feedback_text(stats)}")
    if entries:
        click.echo("Recent feedback:")
    for entry in report["recent_feedback"]:
        about = f' (about "{entry["question"][:60]}")' if entry["question"] else ""
        click.echo(f"  {entry['at']}  {entry['sender']}  {entry['text']}{about}")


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Verify configuration, dependencies and connectivity; exit 1 on any error."""
    from bot.ops.checks import run_checks

    findings = run_checks(_services())
    for finding in findings:
        click.echo(finding.line())
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        sys.exit(1)


def register_cli(app: Flask) -> None:
    """Attach the commands to `flask --app app`."""
    commands = (chat_command, ingest_command, documents_command, remove_command, search_command)
    for command in (*commands, forget_command, stats_command, check_command):
        app.cli.add_command(command)
