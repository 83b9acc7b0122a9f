"""Retrieval quality on QMSum (validation split): share of questions answered in budget.

    python benchmarks/retrieval_quality.py [--stores sqlite,...] [--limit N] [--json]

Every store gets the same meetings and questions. The metric is the one the dataset's
README defines: passages in rank order fill a 6,000-character context, each charged at
least 600 characters; a question counts as answered when one of its annotated turns
(normalised, first 80 characters) is in that context.

Adding a store: return `(name, factory)` pairs from `extra_stores()` below (the graph
store's hook); a factory gets a scratch folder and returns an empty KnowledgeStore.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `bot` importable
    sys.path.insert(0, str(REPO_ROOT))

from bot.deadline import Deadline  # noqa: E402
from bot.errors import KnowledgeUnavailable  # noqa: E402
from bot.knowledge.ingest import ingest_paths  # noqa: E402
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore  # noqa: E402
from bot.knowledge.store import KnowledgeStore  # noqa: E402
from bot.models import Passage  # noqa: E402

DATASET = REPO_ROOT.parent / "shared/datasets/qmsum-val"
BUDGET_CHARS = 6000
MIN_CHARGE = 600  # a passage costs at least this much, so fragments buy no extra places
K = BUDGET_CHARS // MIN_CHARGE  # as many passages as can possibly fit the budget
MIN_TURN_CHARS = 40
KEY_CHARS = 80
SEARCH_SECONDS = 10.0

StoreFactory = Callable[[Path], KnowledgeStore]  # scratch folder -> an empty store


def extra_stores() -> list[tuple[str, StoreFactory]]:
    """Stores beyond the built-in ones, e.g. ("falkordb", factory) when a server is up."""
    # The graph store plugs in here. A factory that raises KnowledgeUnavailable (no
    # server configured or reachable) is reported as skipped, not as a failure.
    from benchmarks.graph_stores import graph_stores

    return graph_stores()


def available_stores() -> list[tuple[str, StoreFactory]]:
    """Every store the benchmark knows, built-in first."""
    builtin: list[tuple[str, StoreFactory]] = [
        ("sqlite", lambda scratch: SqliteKnowledgeStore(str(scratch / "knowledge.sqlite3")))
    ]
    return builtin + extra_stores()


@dataclass(frozen=True)
class Question:
    """One specific QMSum question and the keys of the turns that answer it."""

    meeting: str
    query: str
    keys: tuple[str, ...]


@dataclass
class StoreResult:
    """One store's figures."""

    store: str
    meetings: int
    questions: int
    answered: int
    share: float
    search_ms_p50: float
    search_ms_p95: float
    chunks: int
    ingest_seconds: float


def normalise(text: str) -> str:
    """Whitespace collapsed, lower case: how turns and contexts are compared."""
    return " ".join(text.split()).lower()


def answer_keys(turns: Sequence[dict], spans: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """First 80 characters of each annotated turn of 40+ characters (else the longest)."""
    texts = [
        normalise(turns[i]["content"])
        for start, end in spans
        for i in range(int(start), min(int(end), len(turns) - 1) + 1)
    ]
    texts = [t for t in texts if t]
    long = [t for t in texts if len(t) >= MIN_TURN_CHARS]
    chosen = long or sorted(texts, key=len)[-1:]
    return tuple(dict.fromkeys(t[:KEY_CHARS] for t in chosen))


def load_questions(files: Sequence[Path]) -> list[Question]:
    """The specific questions of these meeting files (the only place answers are read)."""
    questions = []
    for path in files:
        meeting = json.loads(path.read_text(encoding="utf-8"))
        turns = meeting["meeting_transcripts"]
        for item in meeting.get("specific_query_list", []):
            keys = answer_keys(turns, item["relevant_text_span"])
            if keys:
                questions.append(Question(path.stem, item["query"], keys))
    return questions


def build_context(passages: Sequence[Passage]) -> str:
    """Passages in rank order until the budget is used; each costs >= MIN_CHARGE."""
    used, parts = 0, []
    for passage in passages:
        cost = max(len(passage.text), MIN_CHARGE)
        if used + cost > BUDGET_CHARS:
            break
        parts.append(passage.text)
        used += cost
    return normalise("\n".join(parts))


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run_store(
    name: str, factory: StoreFactory, files: Sequence[Path], questions: Sequence[Question]
) -> StoreResult:
    """Ingest the meetings into a fresh store, ask every question, measure."""
    with tempfile.TemporaryDirectory(prefix=f"qmsum-{name}-") as scratch:
        store = factory(Path(scratch))
        try:
            summary = ingest_paths(store, [str(p) for p in files], progress=False)
            if summary.errors:
                raise SystemExit(f"{name}: ingest failed: {summary.errors[:3]}")
            answered, latencies = 0, []
            for question in questions:
                started = time.perf_counter()
                passages = store.search(question.query, K, Deadline(SEARCH_SECONDS))
                latencies.append((time.perf_counter() - started) * 1000)
                context = build_context(passages)
                answered += any(key in context for key in question.keys)
        finally:
            store.close()
    return StoreResult(
        store=name,
        meetings=len(files),
        questions=len(questions),
        answered=answered,
        share=round(answered / max(len(questions), 1), 3),
        search_ms_p50=round(statistics.median(latencies), 2) if latencies else 0.0,
        search_ms_p95=round(percentile(latencies, 0.95), 2),
        chunks=summary.chunks,
        ingest_seconds=round(summary.seconds, 2),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="", help="comma-separated names (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N meetings")
    parser.add_argument("--json", action="store_true", help="one JSON object per store")
    parser.add_argument("--dataset", type=Path, default=DATASET, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 2 for a missing dataset or an unknown store."""
    args = parse_args(argv)
    files = sorted(args.dataset.glob("*.json")) if args.dataset.is_dir() else []
    if not files:
        print(f"QMSum dataset not found at {args.dataset}: nothing to measure.", file=sys.stderr)
        return 2
    files = files[: args.limit] if args.limit > 0 else files
    stores = available_stores()
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = sorted(set(wanted) - {name for name, _ in stores})
    if unknown:
        names = ", ".join(name for name, _ in stores)
        print(f"unknown store(s) {', '.join(unknown)}; available: {names}", file=sys.stderr)
        return 2
    questions = load_questions(files)
    for name, factory in stores:
        if wanted and name not in wanted:
            continue
        try:
            result = run_store(name, factory, files, questions)
        except KnowledgeUnavailable as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        print(json.dumps(asdict(result)) if args.json else _line(result), flush=True)
    return 0


def _line(r: StoreResult) -> str:
    return (
        f"{r.store}: {r.answered}/{r.questions} answered within {BUDGET_CHARS:,} chars"
        f" = {r.share:.3f}; search p50 {r.search_ms_p50:.1f} ms, p95 {r.search_ms_p95:.1f} ms;"
        f" {r.meetings} meetings, {r.chunks} chunks, ingest {r.ingest_seconds:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
