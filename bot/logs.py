"""Logging: stdout (what gunicorn and Render collect) plus a rotating file, both written by
one background thread, so a request only queues its lines."""

from __future__ import annotations

import atexit
import copy
import logging
import os
import queue
import re
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
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
        """The formatted line with numbers masked and secrets replaced by '***' (made once
        per record: stdout and the file share this formatter)."""
        made = record.__dict__.get(_LINE)
        if made is not None and made[0] is self:
            return made[1]
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, "***")
        line = _URL_CREDENTIALS_RE.sub("***@", line)
        line = _NUMBER_RE.sub(lambda m: mask_number(m.group(0)), line)
        record.__dict__[_LINE] = (self, line)
        return line


# Where RedactingFormatter keeps a record's finished line for the next handler.
_LINE = "_whatsapp_bot_line"


class _Enqueue(QueueHandler):
    """Hands records to the writer thread. On the calling thread only what must happen
    there: the request id (a context variable of this thread), the message's %-formatting
    (an argument changed later still logs as it was) and a traceback's text; the time
    stamp, redaction and the writes happen in the writer."""

    def __init__(self, formatter: logging.Formatter, targets: list[logging.Handler]) -> None:
        super().__init__(queue.SimpleQueue())
        self._exceptions = formatter
        self.targets = targets
        self.writer: QueueListener | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Queued for the writer; written here when there is none (after it stopped at exit)."""
        if self.writer is not None:
            super().emit(record)
            return
        for target in self.targets:
            if record.levelno >= target.level:
                target.handle(record)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy with the message made (other handlers, caplog's, keep the original)."""
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = self._exceptions.formatException(record.exc_info)
            record.exc_info = None  # the text is kept; the traceback's frames are not
        return record

    def flush(self) -> None:
        """Return once every line queued so far is written (tests read the file next)."""
        writer = self.writer  # read once: _stop() may set it to None meanwhile
        thread = getattr(writer, "_thread", None)
        if thread is not None and thread.is_alive() and threading.current_thread() is not thread:
            written = threading.Event()
            self.queue.put_nowait(written)  # the writer sets it after the lines before it
            writer.hurry.set()  # type: ignore[union-attr]
            # In steps: a writer stopped meanwhile never sets it (its lines are written).
            until = time.monotonic() + FLUSH_SECONDS
            while not written.wait(0.05) and thread.is_alive() and time.monotonic() < until:
                pass
        for target in self.targets:
            target.flush()


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
        _stop(handler)
        for target in getattr(handler, "targets", ()):
            target.close()
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
    formatter = RedactingFormatter(settings.secrets())
    for handler in handlers:
        handler.setFormatter(formatter)
    enqueue = _Enqueue(formatter, handlers)
    enqueue.addFilter(_RequestIdFilter())
    setattr(enqueue, _MARK, True)
    _start(enqueue)
    root.addHandler(enqueue)
    # httpx(2) logs every request URL at INFO: noise at our level.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- the writer thread ---------------------------------------------------------------
# One per process: started by configure_logging, started anew in a forked child (gunicorn
# with --preload forks after create_app; the parent's thread does not exist there), and
# drained at exit, after which lines are written by the thread that logs them.
_installed: list[_Enqueue] = []


# The queue is a SimpleQueue (C, no task accounting): queue.Queue's Python-level lock and
# Condition.notify cost a request thread about 7% of its GIL time at 32 messages in flight
# (py-spy --gil under gunicorn, issue 19). flush() queues an Event instead of join().
FLUSH_SECONDS = 10.0  # a writer stuck on a full disk must not hang a caller for ever
# After writing, the writer lets lines gather this long before it looks again: a message
# logs four, and a wake-up per line cost the process more CPU than writing them did.
GATHER_SECONDS = 0.02


class _Writer(QueueListener):
    """QueueListener writing everything queued by the time it wakes: under load, one
    wake-up (and one turn of the GIL) per batch of lines, not per line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hurry = threading.Event()  # flush() and stop() cut the gathering short

    def enqueue_sentinel(self) -> None:
        super().enqueue_sentinel()
        self.hurry.set()

    def _monitor(self) -> None:
        q = self.queue
        while True:
            if self.hurry.wait(GATHER_SECONDS):
                self.hurry.clear()
            batch = [q.get()]
            try:
                while True:
                    batch.append(q.get_nowait())
            except queue.Empty:
                pass
            for record in batch:
                if isinstance(record, threading.Event):
                    record.set()  # a flush(): every line queued before it is written
                elif record is not self._sentinel:
                    self.handle(record)
            if any(record is self._sentinel for record in batch):
                return


def _start(enqueue: _Enqueue) -> None:
    enqueue.writer = _Writer(enqueue.queue, *enqueue.targets, respect_handler_level=True)
    enqueue.writer.start()
    _installed[:] = [enqueue]


def _stop(handler: logging.Handler) -> None:
    """Write what is queued, then end the writer thread (the handlers stay open)."""
    writer = getattr(handler, "writer", None)
    if writer is None:
        return
    handler.writer = None  # type: ignore[attr-defined]
    thread = getattr(writer, "_thread", None)
    if thread is not None and thread.is_alive():
        writer.stop()


def _restart_in_child() -> None:
    """After a fork: a new queue (another thread may have held the old one's lock) and a
    new writer for the same handlers."""
    for enqueue in _installed:
        if enqueue.writer is not None:
            enqueue.queue = queue.SimpleQueue()
            _start(enqueue)


def _stop_at_exit() -> None:
    for enqueue in list(_installed):
        _stop(enqueue)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_in_child)
atexit.register(_stop_at_exit)
