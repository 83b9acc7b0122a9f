"""Chat commands after the trigger word: help, reset/clear, sources."""

from __future__ import annotations

import re

from bot.history.store import SenderUsage, UsageStats

STATS_DAYS = 7
STATS_TOP = 5

HELP_TEXT = (
    "*Hi! I answer questions from your team's knowledge base.*\n"
    "Ask me anything after {trigger}, for example:\n"
    "_{trigger} what did we decide about the UK timeline?_\n\n"
    "Commands:\n"
    "• *{trigger} help*: this message\n"
    "• *{trigger} reset*: forget our conversation so far\n"
    "• *{trigger} sources*: where my last answer came from\n"
    "• *{trigger} stats*: how much you have asked me"
)
MENTION_HINT = "Mention me with {trigger} to ask a question, e.g. _{trigger} help_."
MEDIA_REPLY = "I can only read text messages for now. Please type your question after {trigger}."

# Commands are a single word, optionally followed by punctuation: "@agent help me with the
# UK timeline" is a question, not the help command.
_COMMANDS = {
    "help": "help",
    "reset": "reset",
    "clear": "reset",
    "sources": "sources",
    "stats": "stats",
}
_COMMAND_RE = re.compile(r"^/?([a-z]+)[\s.!?]*$", re.IGNORECASE)


def parse_command(question: str) -> str | None:
    """The command a question names ('help', 'reset', 'sources'), or None for a question."""
    match = _COMMAND_RE.match(question.strip())
    return _COMMANDS.get(match.group(1).lower()) if match else None


def sources_text(sources: tuple[str, ...] | None) -> str:
    """The reply to `sources`."""
    if sources is None:
        return "I haven't answered a question in this conversation yet."
    if not sources:
        return "My last answer did not come from any document in the knowledge base."
    listed = "\n".join(f"• {source}" for source in sources)
    return f"My last answer came from:\n{listed}"


def member_stats_text(usage: SenderUsage) -> str:
    """A sender's own counters."""
    return (
        f"*Your questions:* {usage.today} today, {usage.questions} in total, "
        f"on {usage.active_days} different day(s)."
    )


def team_stats_text(stats: UsageStats) -> str:
    """The team's usage for an admin, short enough for one WhatsApp message."""
    lines = [f"*Team usage, last {STATS_DAYS} days*"]
    lines += [
        f"• {d.day}: {d.questions} question(s) from {d.senders} sender(s)" for d in stats.days
    ]
    if not stats.days:
        lines.append("• no questions yet")
    lines.append(f"Active senders: {stats.active_senders}")
    lines.append(f"Feedback received: {stats.feedback}")
    if stats.top_questions:
        lines.append("*Most asked:*")
        lines += [
            f"{n}. {q[:80]} ({count}×)" for n, (q, count) in enumerate(stats.top_questions, 1)
        ]
    return "\n".join(lines)
