"""Which server answers at the Bolt URI: its dialect, and whether it is recent enough.

The agent string comes with every connection (`get_server_info`), but FalkorDB 4.16
announces itself as "Neo4j/5.13.0", so the dialect is settled by one more question: only
FalkorDB lists `db.idx.*` procedures under `dbms.procedures()`, which Neo4j 5 removed
(it answers ProcedureNotFound). Any other failure (credentials, network, a server that
is starting) settles nothing: the next call asks again.
"""

from __future__ import annotations

import re

from bot.deadline import Deadline
from bot.knowledge.graph.client import GraphClient, GraphQueryError, ServerInfo

DETECT_DIALECT = (
    "CALL dbms.procedures() YIELD name WHERE name STARTS WITH 'db.idx.' RETURN count(name) AS n"
)
PROCEDURE_NOT_FOUND = "Neo.ClientError.Procedure.ProcedureNotFound"
_VERSION = re.compile(r"^neo4j/(\d+)\.(\d+)", re.IGNORECASE)


def detect_dialect(client: GraphClient, deadline: Deadline) -> tuple[str, ServerInfo]:
    """("neo4j" | "falkordb", the server's info); raises KnowledgeUnavailable when the
    server cannot be asked, so that nothing is settled by a failure."""
    info = client.server_info(deadline)  # an authentication error stops here
    if "falkordb" in info.agent.lower():
        return "falkordb", info
    try:
        rows = client.read(lambda tx: tx.run(DETECT_DIALECT).data(), deadline)
    except GraphQueryError as exc:
        if exc.code == PROCEDURE_NOT_FOUND:
            return "neo4j", info
        raise
    return ("falkordb" if rows and rows[0]["n"] else "neo4j"), info


def version_of(agent: str) -> tuple[int, int] | None:
    """(major, minor) of a "Neo4j/5.26.0" or "Neo4j/2025.01.0" agent string."""
    found = _VERSION.match(agent.strip())
    return (int(found[1]), int(found[2])) if found else None


def too_old(floor: tuple[int, int] | None, info: ServerInfo) -> str | None:
    """Why the server is below the dialect's floor, or None."""
    version = version_of(info.agent)
    if floor is None or version is None or version >= floor:
        return None
    return (
        f"{info.agent} is older than Neo4j {floor[0]}.{floor[1]}, the oldest the neo4j "
        f"dialect supports (CREATE VECTOR INDEX arrived in {floor[0]}.{floor[1]}): index "
        "creation fails and searches find nothing; upgrade the server"
    )


def describe(dialect: str, info: ServerInfo) -> str:
    """One line for `check`: what answers, over which Bolt version."""
    if dialect == "falkordb":
        return f"graph server: FalkorDB over Bolt {info.bolt} (it announces {info.agent})"
    return f"graph server: {info.agent} over Bolt {info.bolt}, dialect {dialect}"
