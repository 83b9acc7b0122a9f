"""Which stored documents a `remove` or `move` target, an `ingest --prune` or `check` is
about.

A document's source is the key ingest gave it: the name of the folder it was ingested
from, then the path below it ("sample/uk-engagement-timeline.md"), so a folder key such as
"sample/" names everything ingested from any folder of that name.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.knowledge.store import DocumentInfo

# The root folder name of the bundled, fictional knowledge/sample (`make run` ingests it).
SAMPLE_FOLDER = "sample"


def under(source: str, folder: str) -> bool:
    """True when `source` lies below the folder key `folder` ("notes" or "notes/team/")."""
    prefix = folder.strip("/")
    return bool(prefix) and source.startswith(prefix + "/")


def names(document: DocumentInfo, target: str) -> bool:
    """Whether `target` names the document: its exact source or title, a folder key it lies
    under, or "#" and its collection ("#board")."""
    in_collection = target.startswith("#") and target[1:] == document.collection
    return (
        in_collection
        or target in (document.source, document.title)
        or under(document.source, target)
    )


def select(
    documents: Iterable[DocumentInfo], targets: Iterable[str]
) -> tuple[list[DocumentInfo], list[str]]:
    """The documents a target names (see `names`), in listing order, and the targets that
    named none."""
    documents, targets = list(documents), list(dict.fromkeys(targets))
    chosen: dict[str, DocumentInfo] = {}
    unmatched = []
    for target in targets:
        named = [d for d in documents if names(d, target)]
        if not named:
            unmatched.append(target)
        chosen.update((d.id, d) for d in named)
    return [d for d in documents if d.id in chosen], unmatched


def stale(
    documents: Iterable[DocumentInfo], folders: Iterable[str], present: set[str]
) -> list[DocumentInfo]:
    """Documents below one of the folder keys whose source is not among `present`."""
    folders = [f for f in folders if f.strip("/")]
    return [
        d
        for d in documents
        if d.source not in present and any(under(d.source, folder) for folder in folders)
    ]


def bundled_sample(documents: Iterable[DocumentInfo]) -> list[DocumentInfo]:
    """The documents ingested from the bundled sample folder."""
    return [d for d in documents if under(d.source, SAMPLE_FOLDER)]
