"""Logging: stdout (what gunicorn and Render collect) plus a rotating file."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

import click

from bot.settings import Settings
from bot.text import mask_number

FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
LOG_FILE = "whatsapp_agent.log"
_MARK = "_whatsapp_bot_handler"


# Phone numbers as Twilio writes them (+E.164, optionally "whatsapp:"-prefixed), and bare
# digit runs as long as one (WaId). Timestamps and durations never have 10 digits in a row.
_NUMBER_RE = re.compile(r"(?:whatsapp:)?\+\d{7,15}\b|(?<![\w.])\d{10,15}\b")
# user:password@ in a database or Redis URL.
_URL_CREDENTIALS_RE = re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]*@")


# Ties together the stage lines of one webhook request ("-" outside requests).
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id() -> str:
    """Start a request: every log line from this thread carries the new id until the next."""
    value = uuid.uuid4().hex[:8]
    _request_id.set(value)
    return value


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RedactingFormatter(logging.Formatter):
    """Masks phone numbers and removes secrets from every line, whoever logged it."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(FORMAT)
        # Only secrets long enough not to match ordinary words.
        self._secrets = tuple(sorted((s for s in secrets if len(s) >= 6), key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line with numbers masked and secrets replaced by '***'."""
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, "***")
        line = _URL_CREDENTIALS_RE.sub("***@", line)
        return _NUMBER_RE.sub(lambda m: mask_number(m.group(0)), line)


def _console() -> TextIO:
    """stdout for the server (gunicorn, Render); stderr under a CLI command, whose stdout
    is its output (`flask search` writes JSON lines there)."""
    return sys.stderr if click.get_current_context(silent=True) is not None else sys.stdout


def log_path(settings: Settings) -> Path:
    """LOG_FILE, or whatsapp_agent.log in DATA_DIR."""
    return Path(settings.log_file) if settings.log_file else Path(settings.data_dir) / LOG_FILE


def configure_logging(settings: Settings, max_bytes: int = 5_000_000) -> None:
    """Install our handlers once per process (create_app may run many times in tests)."""
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(_console())]
    try:
        path = log_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(
                path,
                maxBytes=max_bytes,
                backupCount=3,
                encoding="utf-8",
                delay=True,
            )
        )
    except OSError:
        pass  # a read-only disk must not stop the bot; stdout still has everything
    for handler in handlers:
        handler.setFormatter(RedactingFormatter(settings.secrets()))
        handler.addFilter(_RequestIdFilter())
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    # httpx(2) logs every request URL at INFO: noise at our level.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
