"""Extractive answer quality: do the quoted sentences answer the question?

    python benchmarks/extractive_quality.py [--skip-qmsum] [--limit N] [--doc PATH | --no-write]

Both parts ask as the app does without a Mistral key: the question goes through the real
retrieval (SQLite FTS5, `search_query`, the app's `context_limit` passages), then through
`ExtractiveAnswerer` (bot/answer/extractive.py), and the reply text is judged.

- **Sample**: the questions in benchmarks/sample_questions.json about knowledge/sample/,
  each with a phrase a good answer must contain. A reply *answers* when it contains its
  phrase, case-insensitively. Target: a share of at least 0.9.
- **QMSum** (../shared/datasets/qmsum-val, the 35 meetings ingested together; 237
  specific questions with annotated answer turns). A reply *quotes an answer turn* when
  one of its quoted pieces appears in an annotated turn. The pieces: each `• ` line of the
  reply cut at `…` (clipped text) and after sentence-ending punctuation followed by a
  space, each less a leading `Label: ` of one to four words (the speaker the answerer
  names); a piece counts when, normalised (whitespace collapsed, lower case), it has 40
  characters or more and is a substring of the normalised content of a turn inside the
  question's `relevant_text_span` ranges. The retrieval ceiling is the share of questions
  for which some such piece exists at all: a sentence of the retrieved passages, cut the
  same way, of 40+ characters, inside an annotated turn.

Writes its section of docs/PERFORMANCE.md (or --doc PATH; --no-write to skip). The
"before" column is the answerer at commit 14376a2, measured once with this script.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `bot` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._common import (  # noqa: E402
    PERFORMANCE_MD,
    QMSUM,
    machine_line,
    percentile,
    table,
    write_section,
)
from bot.answer.extractive import ExtractiveAnswerer  # noqa: E402
from bot.deadline import Deadline  # noqa: E402
from bot.followup import search_query  # noqa: E402
from bot.knowledge.ingest import ingest_paths  # noqa: E402
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore  # noqa: E402
from bot.models import Answer  # noqa: E402
from bot.settings import Settings  # noqa: E402

SECTION = "extractive_quality"
SAMPLE = REPO_ROOT / "knowledge" / "sample"
QUESTIONS = Path(__file__).with_name("sample_questions.json")
TARGET_SHARE = 0.9
MIN_QUOTE_CHARS = 40
WHATSAPP_LIMIT = 1600
SEARCH_SECONDS = 10.0
# The answerer at commit 14376a2 (before issue 16), measured with this script and the
# retrieval of the same day; the QMSum ceiling does not depend on the answerer.
BEFORE = {"sample": (33, 43), "qmsum": (85, 237), "mean": 652, "longest": 1381}
BEFORE_WHAT = "the answerer at commit 14376a2 (up to five best-overlap sentences), 2026-12-01."
# Longer replies quote more: the old answerer allowed more sentences, the new one a
# smaller character budget, compared at about the same mean length (2026-12-01).
EQUAL_LENGTH = (
    "At about equal mean length the change still leads on QMSum: before with up to 9 "
    "sentences 89 / 237 at 871 characters, now 96 / 237 at 863; before 85 at 652, now "
    "with a 600-character budget 88 at 637."
)

_LABEL = re.compile(r"^(?:[^\s:]+ ){0,3}[^\s:]+:\s+")
_PIECE_END = re.compile(r"(?<=[.!?])\s+|…")


@dataclass(frozen=True)
class SampleQuestion:
    """One question about the sample and the phrase a good answer contains."""

    question: str
    phrase: str
    document: str = ""
    kind: str = ""


@dataclass
class Figures:
    """What one part measured."""

    hits: int = 0
    total: int = 0
    ceiling: int = 0
    reply_chars: list[int] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.hits / self.total if self.total else 0.0


def normalise(text: str) -> str:
    """Whitespace collapsed, lower case: how replies and turns are compared."""
    return " ".join(text.split()).lower()


def load_sample_questions(path: Path = QUESTIONS) -> list[SampleQuestion]:
    """The sample question set."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [SampleQuestion(**item) for item in data["questions"]]


@contextmanager
def sqlite_store(paths: Sequence[Path]) -> Iterator[SqliteKnowledgeStore]:
    """A temporary SQLite knowledge store holding these files or folders."""
    with tempfile.TemporaryDirectory(prefix="extractive-") as scratch:
        store = SqliteKnowledgeStore(str(Path(scratch) / "knowledge.sqlite3"))
        try:
            summary = ingest_paths(store, [str(p) for p in paths], progress=False)
            if summary.errors:
                raise SystemExit(f"ingest failed: {summary.errors[:3]}")
            yield store
        finally:
            store.close()


def ask(store: SqliteKnowledgeStore, question: str, k: int) -> tuple[Answer, list[str]]:
    """The reply the app gives without a key, and the texts of the passages it was made from."""
    passages = store.search(search_query(question, []), k, Deadline(SEARCH_SECONDS))
    answer = ExtractiveAnswerer().answer(question, passages, [], Deadline(SEARCH_SECONDS))
    return answer, [p.text for p in passages]


def run_sample(questions: Sequence[SampleQuestion], k: int) -> Figures:
    """Ask every sample question; count the replies that contain their phrase."""
    figures = Figures(total=len(questions))
    with sqlite_store([SAMPLE]) as store:
        for item in questions:
            started = time.perf_counter()
            answer, _ = ask(store, item.question, k)
            figures.answer_ms.append((time.perf_counter() - started) * 1000)
            figures.reply_chars.append(len(answer.text))
            if item.phrase.lower() in answer.text.lower():
                figures.hits += 1
            else:
                figures.misses.append(item.question)
    return figures


def pieces(text: str) -> list[str]:
    """Normalised pieces of 40+ characters: labels dropped, cut at `…` and sentence ends."""
    found = []
    for line in text.splitlines():
        for piece in _PIECE_END.split(line):
            piece = normalise(_LABEL.sub("", piece.strip(), count=1))
            if len(piece) >= MIN_QUOTE_CHARS:
                found.append(piece)
    return found


def reply_pieces(reply: str) -> list[str]:
    """The pieces of a reply's `• ` lines: what it quotes (the answerer's own text, such
    as the intro and the sources line, is not a quote)."""
    bullets = [line[2:] for line in reply.splitlines() if line.startswith("• ")]
    return pieces("\n".join(bullets))


def quotes(candidates: Sequence[str], turns: Sequence[str]) -> bool:
    """True when one of the pieces is inside one of the (normalised) turns."""
    return any(piece in turn for piece in candidates for turn in turns)


def qmsum_questions(
    dataset: Path, limit: int = 0
) -> tuple[list[Path], list[tuple[str, list[str]]]]:
    """The meeting files, and each specific question with its annotated turns (normalised)."""
    files = sorted(dataset.glob("*.json"))
    files = files[:limit] if limit > 0 else files
    asked = []
    for path in files:
        meeting = json.loads(path.read_text(encoding="utf-8"))
        turns = meeting["meeting_transcripts"]
        for item in meeting.get("specific_query_list", []):
            texts = [
                normalise(turns[i]["content"])
                for start, end in item["relevant_text_span"]
                for i in range(int(start), min(int(end), len(turns) - 1) + 1)
            ]
            asked.append((item["query"], [t for t in texts if t]))
    return files, asked


def run_qmsum(dataset: Path, k: int, limit: int = 0) -> Figures:
    """Ask every QMSum question of the whole split; count replies quoting an answer turn."""
    files, asked = qmsum_questions(dataset, limit)
    figures = Figures(total=len(asked))
    with sqlite_store(files) as store:
        for question, turns in asked:
            started = time.perf_counter()
            answer, passages = ask(store, question, k)
            figures.answer_ms.append((time.perf_counter() - started) * 1000)
            figures.reply_chars.append(len(answer.text))
            figures.ceiling += quotes(pieces("\n".join(passages)), turns)
            if quotes(reply_pieces(answer.text), turns):
                figures.hits += 1
            else:
                figures.misses.append(question)
    return figures


def report(sample: Figures, qmsum: Figures | None, k: int, why: str = "") -> str:
    """The PERFORMANCE.md section."""
    rows = [_row("sample: reply contains the phrase", BEFORE["sample"], sample)]
    if qmsum is not None:
        rows.append(_row("QMSum: reply quotes an annotated turn", BEFORE["qmsum"], qmsum))
        mean = round(statistics.mean(qmsum.reply_chars)) if qmsum.reply_chars else 0
        rows.append(["QMSum: mean reply length, characters", f"{BEFORE['mean']:,}", f"{mean:,}"])
    replies = sample.reply_chars + (qmsum.reply_chars if qmsum else [])
    rows.append(["longest reply, characters", f"{BEFORE['longest']:,}", f"{max(replies):,}"])
    times = sample.answer_ms + (qmsum.answer_ms if qmsum else [])
    verdict = "**met**" if sample.share >= TARGET_SHARE else "**not met**"
    lines = [
        "## Extractive answers (no model)",
        "",
        machine_line(),
        "",
        "Command: `python benchmarks/extractive_quality.py` (part of `make bench`). Each "
        f"question is searched as the app does (SQLite FTS5, k = {k}, the app's "
        "`context_limit`) and answered by `ExtractiveAnswerer`, as without a Mistral key. "
        f"Sample: the {sample.total} questions of `benchmarks/sample_questions.json` about "
        "`knowledge/sample/`; a reply answers when it contains the question's phrase "
        "(case-insensitive). QMSum: the validation split's specific questions, all 35 "
        "meetings in one store; a reply quotes an annotated turn when one of its quoted "
        "pieces (40+ characters, normalised; the script's docstring defines it) is inside "
        f"an annotated answer turn. Before: {BEFORE_WHAT}",
        "",
        table(["measure", "before", "now"], rows),
        "",
        f"- Target: sample share at least {TARGET_SHARE}: {sample.share:.2f}: {verdict}.",
    ]
    if qmsum is not None:
        lines.append(
            f"- QMSum ceiling: the retrieved passages hold a quotable piece of an annotated "
            f"turn for {_share(qmsum.ceiling, qmsum.total)} of the questions (retrieval's "
            "share, the same for any answerer)."
        )
        lines.append(f"- {EQUAL_LENGTH}")
    lines.append(
        f"- One WhatsApp message is {WHATSAPP_LIMIT:,} characters. Retrieval plus answer "
        f"p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms."
    )
    if sample.misses:
        lines.append("- Sample questions not answered: " + "; ".join(sample.misses) + ".")
    if why:
        lines.append(f"- {why}")
    return "\n".join(lines)


def _share(hits: int, total: int) -> str:
    return f"{hits} / {total} = {hits / total:.2f}" if total else "-"


def _row(name: str, before: tuple[int, int], now: Figures) -> list[str]:
    return [name, _share(*before), f"**{_share(now.hits, now.total)}**"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-qmsum", action="store_true", help="the sample questions only")
    parser.add_argument("--limit", type=int, default=0, help="only the first N QMSum meetings")
    parser.add_argument("--misses", action="store_true", help="print unanswered questions")
    parser.add_argument("--dataset", type=Path, default=QMSUM, help=argparse.SUPPRESS)
    parser.add_argument("--doc", type=Path, default=PERFORMANCE_MD, help="where to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts; without the dataset, the sample part alone (and the section says so)."""
    args = parse_args(argv)
    k = Settings().context_limit
    sample = run_sample(load_sample_questions(), k)
    qmsum, why = None, ""
    if args.skip_qmsum:
        why = "QMSum not measured in this run (--skip-qmsum)."
    elif not args.dataset.is_dir() or not any(args.dataset.glob("*.json")):
        why = f"QMSum dataset not found at {args.dataset}: not measured."
    else:
        qmsum = run_qmsum(args.dataset, k, args.limit)
    text = report(sample, qmsum, k, why)
    print(text)
    if args.misses and qmsum is not None:
        print("\nQMSum questions not quoted:\n" + "\n".join(qmsum.misses))
    if not args.no_write:
        write_section(SECTION, text, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
