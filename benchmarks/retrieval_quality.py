"""Retrieval quality on QMSum (validation split): share of questions answered in budget,
and share of off-topic questions the store finds nothing for.

    python benchmarks/retrieval_quality.py [--stores sqlite,...] [--limit N] [--json]
                                           [--doc PATH | --no-write]

Every store gets the same meetings and questions. The metric is the one the dataset's
README defines: passages in rank order fill a 6,000-character context, each charged at
least 600 characters; a question counts as answered when one of its annotated turns
(normalised, first 80 characters) is in that context. Then each of the 64 questions of
benchmarks/offtopic_questions.json (neither QMSum nor the sample knowledge answers them)
is asked: "not found" means `search` returned no passage, as the relevance floor should.
Both with the floor (`knowledge.relevance_floor`) off, the default, and on.

Stores: `sqlite` (full text); `sqlite-hybrid` (full text and vectors) when
MISTRAL_SERVER_URL or MISTRAL_API_KEY is set: the real SDK against that server, e.g. the
semantic stand-in of ../shared/tools/semantic_embeddings (about 4 minutes to embed QMSum on
2 cores); FalkorDB from benchmarks/graph_stores.py when it can start a server. A full run
(no --limit) writes each store's figures into its own section of docs/PERFORMANCE.md
(`retrieval_quality_<store>`), so runs of different stores do not overwrite each other.

Adding a store: return `(name, factory)` pairs from `extra_stores()` below (the graph
store's hook); a factory gets a scratch folder and returns an empty KnowledgeStore.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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

from benchmarks._common import (  # noqa: E402
    PERFORMANCE_MD,
    machine_line,
    table,
    write_section,
)
from bot.deadline import Deadline  # noqa: E402
from bot.embedding import Embedder  # noqa: E402
from bot.errors import KnowledgeUnavailable  # noqa: E402
from bot.knowledge.ingest import ingest_paths  # noqa: E402
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore  # noqa: E402
from bot.knowledge.store import KnowledgeStore  # noqa: E402
from bot.models import Passage  # noqa: E402

DATASET = REPO_ROOT.parent / "shared/datasets/qmsum-val"
OFFTOPIC = REPO_ROOT / "benchmarks" / "offtopic_questions.json"
SECTION = "retrieval_quality"  # one section per store: retrieval_quality_<store>
COMMAND = "python benchmarks/retrieval_quality.py --stores {store}"
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


def _embedder() -> Embedder:
    """mistral-embed through the real SDK, at MISTRAL_SERVER_URL when set (a stand-in
    takes any key); KnowledgeUnavailable (reported as skipped) when neither is set."""
    url = os.environ.get("MISTRAL_SERVER_URL", "")
    key = os.environ.get("MISTRAL_API_KEY", "")
    if not (url or key):
        raise KnowledgeUnavailable("neither MISTRAL_SERVER_URL nor MISTRAL_API_KEY is set")
    from bot.answer.mistral import MistralEmbedder

    return MistralEmbedder(key or "stand-in", url or None)


def _sqlite(hybrid: bool) -> StoreFactory:
    def factory(scratch: Path) -> KnowledgeStore:
        embedder = _embedder() if hybrid else None
        return SqliteKnowledgeStore(str(scratch / "knowledge.sqlite3"), embedder=embedder)

    return factory


def available_stores() -> list[tuple[str, StoreFactory]]:
    """Every store the benchmark knows, built-in first."""
    builtin: list[tuple[str, StoreFactory]] = [
        ("sqlite", _sqlite(hybrid=False)),
        ("sqlite-hybrid", _sqlite(hybrid=True)),
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
    not_found: int  # QMSum questions the store found nothing for, floor off (the default)
    floor_answered: int  # QMSum questions answered with the relevance floor on
    floor_share: float
    floor_not_found: int  # QMSum questions the floor turned away
    offtopic: int
    offtopic_not_found: int  # with the floor on
    offtopic_share: float  # of the off-topic questions, the share found nothing for
    offtopic_floor_off: int  # found nothing for with the floor off
    search_ms_p50: float
    search_ms_p95: float
    chunks: int
    ingest_seconds: float
    # Searches whose question embedding failed (full text only): a busy embeddings server
    # makes a hybrid figure partly a full-text one.
    embedding_failures: int = 0


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


class _Failures(logging.Handler):
    """Counts the vector leg's "question embedding failed" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("question embedding")


def load_offtopic(path: Path = OFFTOPIC) -> list[str]:
    """The questions no ingested knowledge answers."""
    return list(json.loads(path.read_text(encoding="utf-8")))


def run_store(
    name: str,
    factory: StoreFactory,
    files: Sequence[Path],
    questions: Sequence[Question],
    offtopic: Sequence[str] = (),
) -> StoreResult:
    """Ingest the meetings into a fresh store, ask every question, measure."""
    failures = _Failures()
    leg = logging.getLogger("bot.knowledge.vector_leg")
    with tempfile.TemporaryDirectory(prefix=f"qmsum-{name}-") as scratch:
        store = factory(Path(scratch))
        leg.addHandler(failures)
        try:
            summary = ingest_paths(store, [str(p) for p in files], progress=False)
            if summary.errors:
                raise SystemExit(f"{name}: ingest failed: {summary.errors[:3]}")
            latencies: list[float] = []

            def search(query: str) -> list[Passage]:
                started = time.perf_counter()
                passages = store.search(query, K, Deadline(SEARCH_SECONDS))
                latencies.append((time.perf_counter() - started) * 1000)
                return passages

            def ask() -> tuple[int, int, int]:
                """(answered, QMSum found nothing, off-topic found nothing)."""
                answered = not_found = 0
                for question in questions:
                    passages = search(question.query)
                    not_found += not passages
                    answered += any(key in build_context(passages) for key in question.keys)
                return answered, not_found, sum(not search(query) for query in offtopic)

            store.relevance_floor = False  # type: ignore[attr-defined]
            answered, not_found, loose = ask()
            store.relevance_floor = True  # type: ignore[attr-defined]
            floor_answered, floor_not_found, rejected = ask()
        finally:
            leg.removeHandler(failures)
            store.close()
    return StoreResult(
        store=name,
        meetings=len(files),
        questions=len(questions),
        answered=answered,
        share=round(answered / max(len(questions), 1), 3),
        not_found=not_found,
        floor_answered=floor_answered,
        floor_share=round(floor_answered / max(len(questions), 1), 3),
        floor_not_found=floor_not_found,
        offtopic=len(offtopic),
        offtopic_not_found=rejected,
        offtopic_share=round(rejected / max(len(offtopic), 1), 3),
        offtopic_floor_off=loose,
        search_ms_p50=round(statistics.median(latencies), 2) if latencies else 0.0,
        search_ms_p95=round(percentile(latencies, 0.95), 2),
        chunks=summary.chunks,
        ingest_seconds=round(summary.seconds, 2),
        embedding_failures=failures.count,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="", help="comma-separated names (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N meetings")
    parser.add_argument("--json", action="store_true", help="one JSON object per store")
    parser.add_argument("--dataset", type=Path, default=DATASET, help=argparse.SUPPRESS)
    parser.add_argument("--doc", type=Path, help="where to write (default: a full run only)")
    parser.add_argument("--no-write", action="store_true", help="print only")
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
    questions, offtopic = load_questions(files), load_offtopic()
    doc = None if args.no_write else args.doc or (None if args.limit > 0 else PERFORMANCE_MD)
    for name, factory in stores:
        if wanted and name not in wanted:
            continue
        try:
            result = run_store(name, factory, files, questions, offtopic)
        except KnowledgeUnavailable as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        print(json.dumps(asdict(result)) if args.json else _line(result), flush=True)
        if doc is not None:
            write_section(f"{SECTION}_{name}", _section(result), doc)
    return 0


def _line(r: StoreResult) -> str:
    return (
        f"{r.store}: {r.answered}/{r.questions} answered within {BUDGET_CHARS:,} chars"
        f" = {r.share:.3f} ({r.not_found} found nothing); with the relevance floor"
        f" {r.floor_answered} = {r.floor_share:.3f} ({r.floor_not_found} turned away) and"
        f" off-topic found nothing {r.offtopic_not_found}/{r.offtopic} = {r.offtopic_share:.3f}"
        f" ({r.offtopic_floor_off} without the floor);"
        f" search p50 {r.search_ms_p50:.1f} ms, p95 {r.search_ms_p95:.1f} ms;"
        f" {r.meetings} meetings, {r.chunks} chunks, ingest {r.ingest_seconds:.1f} s"
        + (f"; {r.embedding_failures} question embeddings failed" if r.embedding_failures else "")
    )


def _section(r: StoreResult) -> str:
    """One store's part of docs/PERFORMANCE.md."""
    command = COMMAND.format(store=r.store)
    if r.store.endswith("-hybrid"):
        url = os.environ.get("MISTRAL_SERVER_URL")
        server = f"MISTRAL_API_KEY=any MISTRAL_SERVER_URL={url}" if url else "MISTRAL_API_KEY=..."
        command = f"{server} {command}"
    rows = [
        ("QMSum questions answered (context holds an annotated turn), floor off (default)",
         f"{r.answered} / {r.questions} = **{r.share:.3f}**"),
        ("... with `knowledge.relevance_floor` on",
         f"{r.floor_answered} / {r.questions} = **{r.floor_share:.3f}**"
         f" ({r.floor_not_found} turned away)"),
        ("off-topic questions found nothing, floor on (off)",
         f"{r.offtopic_not_found} / {r.offtopic} = **{r.offtopic_share:.3f}**"
         f" ({r.offtopic_floor_off})"),
        ("search p50 / p95 (all questions; hybrid: embedding each included)",
         f"{r.search_ms_p50:.1f} / {r.search_ms_p95:.1f} ms"),
        ("ingest", f"{r.meetings} meetings, {r.chunks:,} chunks, {r.ingest_seconds:.1f} s"),
    ]  # fmt: skip
    if r.store.endswith("-hybrid"):
        rows.append(("searches whose question embedding failed (full text only)",
                     str(r.embedding_failures)))  # fmt: skip
    return (
        f"#### Retrieval quality: `{r.store}`\n\n{machine_line()}\n\n"
        f"Command: `{command}` (written by a full run).\n\n{table(('measure', 'value'), rows)}"
    )


if __name__ == "__main__":
    sys.exit(main())
