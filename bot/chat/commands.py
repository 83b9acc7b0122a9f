"""Chat commands after the trigger word: parsing, and the texts the bot replies with."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.history.records import SenderUsage, UsageStats

STATS_DAYS = 7
STATS_TOP = 5
# WhatsApp shows one message up to 1,600 characters; the admin view must fit in one.
MAX_STATS_CHARS = 1600
TOP_QUESTION_CHARS = 60


@dataclass(frozen=True)
class Command:
    """A parsed command: its name and, for feedback and ratings, its text."""

    name: str  # help, reset, sources, stats, feedback, rate, forget, forget-confirm
    text: str = ""  # the feedback text; "up" or "down" for `rate`


# Single-word commands, optionally followed by punctuation: "@agent help me with the UK
# timeline" is a question, not the help command.
_WORDS = {
    "help": "help",
    "reset": "reset",
    "clear": "reset",
    "sources": "sources",
    "stats": "stats",
    "feedback": "feedback",
    "forget": "forget",
}
_WORD_RE = re.compile(r"^/?([a-z]+)[\s.!?]*$", re.IGNORECASE)
_FORGET_ME_RE = re.compile(r"^/?forget\s+me(?:[\s,.!:-]+(yes|confirm))?[\s.!]*$", re.IGNORECASE)
# "feedback <text>". "feedback from the client meeting?" reads as a question; a colon or
# dash after the word ("feedback: can you add dates?") makes it feedback whatever follows.
_FEEDBACK_RE = re.compile(r"^/?feedback\b\s*([:\-–—])?\s*(.+)$", re.IGNORECASE | re.DOTALL)
# 👍/👎 in any skin tone, repeated or not; "good"/"bad" as the whole message.
_SKIN_TONES_RE = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")
_RATING_RE = re.compile(r"^(?:(👍+)|(👎+)|(good)|(bad))[\s.!]*$", re.IGNORECASE)


def parse_rating(text: str) -> str | None:
    """'up' or 'down' when the whole message is 👍/👎 or good/bad, else None."""
    match = _RATING_RE.match(_SKIN_TONES_RE.sub("", text).strip())
    if not match:
        return None
    return "up" if match.group(1) or match.group(3) else "down"


def parse_command(question: str) -> Command | None:
    """The command a message (trigger already removed) names, or None for a question."""
    text = question.strip()
    rating = parse_rating(text)
    if rating:
        return Command("rate", rating)
    forget = _FORGET_ME_RE.match(text)
    if forget:
        return Command("forget-confirm" if forget.group(1) else "forget")
    word = _WORD_RE.match(text)
    if word:
        name = _WORDS.get(word.group(1).lower())
        return Command(name) if name else None
    feedback = _FEEDBACK_RE.match(text)
    if feedback:
        separated, body = feedback.group(1), feedback.group(2).strip()
        if separated or not body.endswith("?"):
            return Command("feedback", body)
    return None


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
        f"*Your questions:* {usage.week} in the last {STATS_DAYS} days, "
        f"{usage.questions} in total ({usage.today} today)."
    )


def seconds_text(milliseconds: float | None) -> str:
    """A median answer time as people read it: '2.4 s', '350 ms', or 'n/a'."""
    if milliseconds is None:
        return "n/a"
    return f"{milliseconds / 1000:.1f} s" if milliseconds >= 1000 else f"{milliseconds:.0f} ms"


def answers_text(stats: UsageStats) -> str:
    """'12 from the model, 2 fallbacks, 3 from the cache' (+ excerpts when there were some)."""
    counts = stats.answers
    parts = [f"{counts.model} from the model", f"{counts.fallback} fallback(s) to excerpts"]
    if counts.excerpts:
        parts.append(f"{counts.excerpts} excerpts (no model configured)")
    parts.append(f"{counts.cache} from the cache")
    return ", ".join(parts)


def feedback_text(stats: UsageStats) -> str:
    """'5 (👍 2, 👎 1, 2 written)'."""
    written = stats.feedback - stats.thumbs_up - stats.thumbs_down
    return f"{stats.feedback} (👍 {stats.thumbs_up}, 👎 {stats.thumbs_down}, {written} written)"


def team_stats_text(stats: UsageStats, days: int = STATS_DAYS) -> str:
    """The team's usage for an admin, short enough for one WhatsApp message."""
    lines = [
        f"*Team usage, last {days} days*",
        f"Questions: {stats.questions} from {stats.active_senders} active sender(s)",
    ]
    lines += [
        f"• {d.day}: {d.questions} question(s) from {d.senders} sender(s)" for d in stats.days
    ]
    lines.append(f"Answers: {answers_text(stats)}")
    lines.append(f"Median answer time: {seconds_text(stats.median_answer_ms)}")
    if stats.top_questions:
        lines.append("*Most asked:*")
        for n, (question, count) in enumerate(stats.top_questions, 1):
            shown = question if len(question) <= TOP_QUESTION_CHARS else question[:59] + "…"
            lines.append(f"{n}. {shown} ({count}×)")
    lines.append(f"Feedback: {feedback_text(stats)}")
    return "\n".join(lines)[:MAX_STATS_CHARS]
