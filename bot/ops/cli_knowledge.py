"""Flask CLI commands about the knowledge base: ingest, documents, remove, search."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

import click
from flask.cli import with_appcontext

from bot.deadline import Deadline
from bot.web.services import Services, current

CLI_SEARCH_SECONDS = 30.0


def _services() -> Services:
    return current()


@click.command("ingest")
@with_appcontext
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--prune", is_flag=True, help="Also remove documents of these folders whose file is gone."
)
@click.option(
    "--reembed",
    is_flag=True,
    help="Then give every stored chunk a vector of the configured embedding model (after "
    "changing it, or adding a key); PATHS are optional.",
)
def ingest_command(paths: tuple[str, ...], prune: bool, reembed: bool) -> None:
    """Load documents and transcripts into the knowledge base (unchanged files are skipped).
    Every file not ingested is named; the exit code is 1 when any failed."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.ingest import ingest_paths

    if not paths:
        if not reembed:
            raise click.UsageError("Missing argument 'PATHS...'.")
        _reembed()
        return
    services = _services()
    try:
        summary = ingest_paths(
            services.knowledge,
            list(paths),
            progress=sys.stderr.isatty(),
            prune=prune,
            ocr=services.ocr,
        )
    except KnowledgeUnavailable as exc:
        # Batches committed before the failure stay; a new run skips them as unchanged.
        raise click.ClickException(
            f"ingest stopped (the files stored so far are kept; run it again to finish): {exc}"
        ) from None
    click.echo(
        f"Ingested {summary.documents_added} new and {summary.documents_updated} changed "
        f"documents ({summary.chunks} chunks, {summary.people} people); "
        f"{summary.documents_skipped} unchanged skipped; {summary.seconds:.1f} s."
    )
    for source in summary.removed:
        click.echo(f"Removed {source}: its file is gone.")
    for line in summary.skipped:
        click.echo(f"skipped: {line}")
    if summary.ignored:
        kinds = ", ".join(f"{suffix} ({n})" for suffix, n in summary.ignored.items())
        count = sum(summary.ignored.values())
        click.echo(f"Ignored {count} file(s) of types ingest does not read: {kinds}.")
    for error in summary.errors:
        click.echo(f"error: {error}", err=True)
    if reembed:
        _reembed()
    if summary.errors:
        sys.exit(1)


def _reembed() -> None:
    """Rebuild the store's vectors with the configured model (`ingest --reembed`)."""
    from bot.errors import KnowledgeUnavailable

    knowledge = _services().knowledge
    vectors = getattr(knowledge, "vectors", None)  # the SQLite store's vector leg
    if vectors is None:
        raise click.ClickException(
            f"--reembed: the {knowledge.backend} store has no vectors to rebuild here "
            "(SQLite needs MISTRAL_API_KEY; the graph store embeds chunks as it writes them)"
        )
    tty = sys.stderr.isatty()
    try:
        done = vectors.rebuild(
            (lambda n: click.echo(f"\r{n} chunks done", nl=False, err=True)) if tty else None
        )
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"--reembed stopped (run it again to resume): {exc}") from None
    if tty:
        click.echo("", err=True)
    click.echo(
        f"Vectors of {done.model}: {done.embedded} chunks embedded, {done.reused} reused, "
        f"{done.replaced} of other models replaced."
    )


def _utc(seconds: float, layout: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return time.strftime(layout, time.gmtime(seconds)) if seconds else ""


def _chunks(n: int) -> str:
    return f"{n} chunk" + ("" if n == 1 else "s")


@click.command("documents")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def documents_command(as_json: bool) -> None:
    """List the documents in the knowledge base: source, title, chunks, when ingested."""
    from bot.errors import KnowledgeUnavailable

    try:
        documents = _services().knowledge.documents()
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    chunks = sum(d.chunks for d in documents)
    if as_json:
        listed = [{**asdict(d), "ingested_at": _utc(d.ingested_at)} for d in documents]
        total = {"documents": len(documents), "chunks": chunks}
        click.echo(json.dumps({"documents": listed, "total": total}, ensure_ascii=False))
        return
    for d in documents:
        at = _utc(d.ingested_at, "%Y-%m-%d %H:%M UTC") or "at an unknown time"
        click.echo(f"{d.source}  {d.title!r}  {_chunks(d.chunks)}, ingested {at}")
    click.echo(f"{len(documents)} document(s), {_chunks(chunks)}.")


@click.command("remove")
@with_appcontext
@click.argument("targets", nargs=-1, required=True)
def remove_command(targets: tuple[str, ...]) -> None:
    """Remove documents named by TARGET: a source or title exactly as `documents` lists it,
    or a folder such as sample/ (everything ingested from it)."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.catalog import select

    knowledge = _services().knowledge
    try:
        chosen, unmatched = select(knowledge.documents(), targets)
        if unmatched:
            raise click.ClickException(
                f"no stored document matches {', '.join(map(repr, unmatched))}; nothing "
                "was removed: give a source or title as `flask --app app documents` lists "
                "it, or a folder such as sample/"
            )
        removed = knowledge.remove(d.id for d in chosen)
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    for d in chosen:
        click.echo(f"Removed {d.source}  {d.title!r}  ({_chunks(d.chunks)})")
    click.echo(f"{removed} document(s) removed.")


def _search_json(question: str, k: int) -> str:
    passages = _services().knowledge.search(question, k, Deadline(CLI_SEARCH_SECONDS))
    return json.dumps(
        {
            "question": question,
            "passages": [
                {"text": p.text, "source": p.source, "score": float(p.score)} for p in passages
            ],
        },
        ensure_ascii=False,
    )


@click.command("search")
@with_appcontext
@click.argument("question", required=False)
@click.option("--k", "k", default=None, type=click.IntRange(1, 1000), help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
def search_command(question: str | None, k: int | None, as_json: bool) -> None:
    """Show what retrieval returns; with no QUESTION, one question per stdin line -> JSON lines."""
    k = k or _services().settings.context_limit
    if question is None:
        for line in sys.stdin:
            if line.strip():
                click.echo(_search_json(line.strip(), k))
        return
    if as_json:
        click.echo(_search_json(question, k))
        return
    passages = _services().knowledge.search(question, k, Deadline(CLI_SEARCH_SECONDS))
    if not passages:
        click.echo("No passages found.")
    for rank, passage in enumerate(passages, 1):
        click.echo(f"[{rank}] {passage.source}  (score {passage.score:.3f})")
        click.echo("    " + passage.text[:300].replace("\n", "\n    "))
