"""Flask CLI commands about the knowledge base: ingest, documents, remove, move (search is
in cli_search)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict

import click
from flask.cli import with_appcontext

from bot.knowledge.store import DocumentInfo
from bot.readers import collection_name
from bot.web.services import Services, current


def _services() -> Services:
    return current()


def _collection(name: str) -> str:
    """`--collection NAME` checked: a valid name, and a configured one when collections
    are (a typo would otherwise put documents where nobody reads them)."""
    try:
        collection_name(name)
    except ValueError as exc:
        raise click.ClickException(f"--collection {name!r}: expected {exc}") from None
    readers = _services().settings.readers
    if readers.configured and name not in readers.names:
        raise click.ClickException(
            f"--collection {name!r}: not one of knowledge.collections "
            f"({', '.join(readers.names)}); add it there first"
        )
    return name


def _no_match(unmatched: list[str], verb: str) -> click.ClickException:
    """The error for targets that named no stored document (`remove`, `move`)."""
    return click.ClickException(
        f"no stored document matches {', '.join(map(repr, unmatched))}; nothing was {verb}: "
        "give a source or title as `flask --app app documents` lists it, a folder such "
        "as sample/, or a collection such as '#general'"
    )


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
@click.option(
    "--collection",
    "collection",
    default=None,
    help="Put every document of PATHS in this collection, unchanged ones too (default: new "
    "documents go to knowledge.default_collection, stored ones stay where they are).",
)
def ingest_command(
    paths: tuple[str, ...], prune: bool, reembed: bool, collection: str | None
) -> None:
    """Load documents and transcripts into the knowledge base (unchanged files are skipped).
    Every file not ingested is named; the exit code is 1 when any failed."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.ingest import ingest_paths
    from bot.knowledge.ingest_file import Placement

    if not paths:
        if not reembed or collection is not None:
            raise click.UsageError("Missing argument 'PATHS...'.")
        _reembed()
        return
    services = _services()
    into = "" if collection is None else _collection(collection)
    placement = Placement(into, services.settings.knowledge_default_collection)
    try:
        summary = ingest_paths(
            services.knowledge,
            list(paths),
            progress=sys.stderr.isatty(),
            prune=prune,
            ocr=services.ocr,
            placement=placement,
        )
    except KnowledgeUnavailable as exc:
        # Batches committed before the failure stay; a new run skips them as unchanged.
        raise click.ClickException(
            f"ingest stopped (the files stored so far are kept; run it again to finish): {exc}"
        ) from None
    where = f" into {into}" if into else ""
    click.echo(
        f"Ingested {summary.documents_added} new and {summary.documents_updated} changed "
        f"documents{where} ({summary.chunks} chunks, {summary.people} people); "
        f"{summary.documents_skipped} unchanged skipped; {summary.seconds:.1f} s."
    )
    for source, left in summary.moved:
        click.echo(f"Moved {source} from {left} to {into} (unchanged).")
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


def _by_collection(documents: list[DocumentInfo]) -> dict[str, int]:
    """{collection: documents in it}, by name."""
    return dict(sorted(Counter(d.collection for d in documents).items()))


@click.command("documents")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def documents_command(as_json: bool) -> None:
    """List the documents in the knowledge base: source, title, chunks, when ingested, and
    the collection each belongs to (who may read it: knowledge.collections)."""
    from bot.errors import KnowledgeUnavailable

    try:
        documents = _services().knowledge.documents()
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    chunks, collections = sum(d.chunks for d in documents), _by_collection(documents)
    if as_json:
        listed = [{**asdict(d), "ingested_at": _utc(d.ingested_at)} for d in documents]
        total = {"documents": len(documents), "chunks": chunks, "collections": collections}
        click.echo(json.dumps({"documents": listed, "total": total}, ensure_ascii=False))
        return
    for d in documents:
        at = _utc(d.ingested_at, "%Y-%m-%d %H:%M UTC") or "at an unknown time"
        click.echo(f"{d.source}  {d.title!r}  {_chunks(d.chunks)}, ingested {at}  #{d.collection}")
    counts = ", ".join(f"#{name} {n}" for name, n in collections.items())
    click.echo(
        f"{len(documents)} document(s), {_chunks(chunks)}" + (f"; {counts}." if counts else ".")
    )


@click.command("remove")
@with_appcontext
@click.argument("targets", nargs=-1, required=True)
def remove_command(targets: tuple[str, ...]) -> None:
    """Remove documents named by TARGET: a source or title exactly as `documents` lists it,
    a folder such as sample/ (everything ingested from it), or a collection such as '#hr'."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.catalog import select

    knowledge = _services().knowledge
    try:
        chosen, unmatched = select(knowledge.documents(), targets)
        if unmatched:
            raise _no_match(unmatched, "removed")
        removed = knowledge.remove(d.id for d in chosen)
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    for d in chosen:
        click.echo(f"Removed {d.source}  {d.title!r}  ({_chunks(d.chunks)})")
    click.echo(f"{removed} document(s) removed.")


@click.command("move")
@with_appcontext
@click.option("--collection", "collection", required=True, help="The collection to put them in.")
@click.argument("targets", nargs=-1, required=True)
def move_command(collection: str, targets: tuple[str, ...]) -> None:
    """Put the documents named by TARGET (as `remove` names them: a source, a title, a
    folder such as minutes/ or a collection such as '#general') in collection NAME: who
    may read them changes at once."""
    from bot.errors import KnowledgeUnavailable
    from bot.knowledge.catalog import select

    into = _collection(collection)
    knowledge = _services().knowledge
    try:
        chosen, unmatched = select(knowledge.documents(), targets)
        if unmatched:
            raise _no_match(unmatched, "moved")
        elsewhere = [d for d in chosen if d.collection != into]
        if elsewhere:  # a move is a new version: not for documents already there
            knowledge.move((d.id for d in elsewhere), into)
    except KnowledgeUnavailable as exc:
        raise click.ClickException(f"the knowledge store is unavailable: {exc}") from None
    for d in chosen:
        if d.collection == into:
            click.echo(f"Already in {into}: {d.source}  {d.title!r}")
        else:
            click.echo(f"Moved {d.source}  {d.title!r}  from {d.collection} to {into}")
    click.echo(f"{len(elsewhere)} document(s) moved to {into}.")
