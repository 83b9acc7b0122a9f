"""Flask CLI commands: chat, forget, stats, check (and, from cli_knowledge, the knowledge ones)."""

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
from bot.ops.cli_knowledge import (
    documents_command,
    ingest_command,
    move_command,
    remove_command,
)
from bot.ops.cli_search import search_command
from bot.settings import Settings
from bot.text import mask_number, normalise_number
from bot.web.blueprint import WEBHOOK_PATH
from bot.web.security import LOCAL_TOKEN_HEADER, SIGNATURE_HEADER, local_token
from bot.web.services import Services, current

DEFAULT_SENDER = "whatsapp:+15555550100"  # a fictional number (555-01xx is reserved)
SANDBOX_NUMBER = "whatsapp:+14155238886"
# A maintenance command may wait longer than a webhook reply (no Twilio deadline).
CLI_SECONDS = 30.0


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
        # The secret a local-mode server in this data directory expects (bot/web/security.py).
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
    deadline = Deadline(CLI_SECONDS)
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
    knowledge = (ingest_command, documents_command, remove_command, move_command, search_command)
    for command in (chat_command, *knowledge, forget_command, stats_command, check_command):
        app.cli.add_command(command)
