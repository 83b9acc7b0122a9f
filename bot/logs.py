"""Logging: stdout (what gunicorn and Render collect) plus a rotating file."""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

import click

from bot.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE = "whatsapp_agent.log"
_MARK = "_whatsapp_bot_handler"


def _console() -> TextIO:
    """stdout for the server (gunicorn, Render); stderr under a CLI command, whose stdout
    is its output (`flask search` writes JSON lines there)."""
    return sys.stderr if click.get_current_context(silent=True) is not None else sys.stdout


def configure_logging(settings: Settings) -> None:
    """Install our handlers once per process (create_app may run many times in tests)."""
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(_console())]
    try:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(
                Path(settings.data_dir) / LOG_FILE,
                maxBytes=5_000_000,
                backupCount=3,
                encoding="utf-8",
                delay=True,
            )
        )
    except OSError:
        pass  # a read-only disk must not stop the bot; stdout still has everything
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    # httpx(2) logs every request URL at INFO: noise at our level.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
