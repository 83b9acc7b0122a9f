"""What became of a document added in the background, told with the admin's next reply.

A document whose ingest outlives its reply (a long PDF, OCR) leaves small JSON files in
DATA_DIR/pending-adds/: `<sender>.<job>.running` while it is being added, then
`<sender>.<job>.done` holding the reply text of its outcome, where <sender> is a hash of
the sender's number (no phone number in a file name or a log line).

Files, not memory, because the admin's next message may reach another gunicorn worker:
every worker of an instance shares the data dir. Files, not a table in the history store,
because a table would be one more schema in two backends for a handful of rows that live
minutes; the cost is that a second instance does not see them (the outcome is then told
when a message reaches the instance that did the work). Each file is written whole with
os.replace, and a done file is claimed by renaming it, so two workers never both tell the
same outcome. A running file older than STALE_SECONDS outlived its worker (a deploy, a
crash): the admin is told that adding it did not finish.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from bot.knowledge.ingest_file import OCR_SECONDS
from bot.texts import DOCUMENT_STILL_ADDING, DOCUMENT_UNFINISHED

logger = logging.getLogger(__name__)

FOLDER = "pending-adds"
# The longest an add can take (its OCR, and parsing and storing around it), and a margin.
STALE_SECONDS = OCR_SECONDS + 120.0
RUNNING, DONE = ".running", ".done"


def _sender_key(sender: str) -> str:
    return hashlib.sha256(sender.encode("utf-8")).hexdigest()[:24]


class AddOutcomes:
    """The outcomes of background adds, per sender, in files under `folder`."""

    def __init__(self, folder: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self._clock = clock  # wall time: the files are shared between processes
        self._made = itertools.count()

    @classmethod
    def in_data_dir(
        cls, data_dir: str | Path, clock: Callable[[], float] = time.time
    ) -> AddOutcomes:
        """The outcomes kept in DATA_DIR/pending-adds/ (made when first needed)."""
        return cls(Path(data_dir) / FOLDER, clock)

    def new_job(self) -> str:
        """A job id; ids sort in the order they were made (in one process, and by the
        millisecond across processes)."""
        made = int(self._clock() * 1000)
        return f"{made:014d}-{next(self._made):08d}-{secrets.token_hex(4)}"

    def started(self, sender: str, job: str, title: str) -> None:
        """Record that `job` goes on after its reply; raises OSError."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"title": title, "started": self._clock()}
        self._write(self._path(sender, job, RUNNING), record)

    def finished(self, sender: str, job: str, text: str) -> None:
        """Record the outcome of a job `started` earlier; raises OSError."""
        self._write(self._path(sender, job, DONE), {"text": text})
        self._path(sender, job, RUNNING).unlink(missing_ok=True)

    def take(self, sender: str) -> str:
        """What to tell the sender now, one line per job ("" for nothing): the outcomes of
        finished jobs (told once), and which are still running. Never raises."""
        prefix = _sender_key(sender) + "."
        try:
            names = sorted(n for n in os.listdir(self.folder) if n.startswith(prefix))
        except FileNotFoundError:
            return ""
        except OSError as exc:
            logger.warning("pending adds unreadable: %s", exc.strerror or exc)
            return ""
        notes = []
        for name in names:
            job, _, suffix = name[len(prefix) :].partition(".")
            if "." + suffix == DONE:
                record = self._claim(self.folder / name)
            elif "." + suffix == RUNNING and f"{prefix}{job}{DONE}" not in names:
                record = self._running(self.folder / name)
            else:
                continue
            if record and record.get("text"):
                notes.append(str(record["text"]))
        return "\n".join(notes)

    def _running(self, path: Path) -> dict | None:
        """A running job's note: still adding, or (claimed and removed) never finished."""
        record = _read(path)
        if record is None:
            return None
        title = str(record.get("title") or "")
        if self._clock() - float(record.get("started") or 0) <= STALE_SECONDS:
            return {"text": DOCUMENT_STILL_ADDING.format(title=title)}
        if self._claim(path) is None:
            return None  # another worker told it
        return {"text": DOCUMENT_UNFINISHED.format(title=title)}

    def _claim(self, path: Path) -> dict | None:
        """Read and remove a file, unless another worker claimed it first (None)."""
        claimed = path.with_name(f"{path.name}.{secrets.token_hex(4)}.taken")
        try:
            os.rename(path, claimed)
        except OSError:
            return None
        record = _read(claimed)
        claimed.unlink(missing_ok=True)
        return record

    def _path(self, sender: str, job: str, suffix: str) -> Path:
        return self.folder / f"{_sender_key(sender)}.{job}{suffix}"

    @staticmethod
    def _write(path: Path, record: dict) -> None:
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        partial.write_text(json.dumps(record), encoding="utf-8")
        os.replace(partial, path)


def _read(path: Path) -> dict | None:
    """A record file's content; None when it is gone or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
