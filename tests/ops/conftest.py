"""Fixtures for the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "falkordb"])
def knowledge(request) -> dict:
    """Settings that put the knowledge in SQLite (the data dir) or in FalkorDB."""
    if request.param == "falkordb":
        server = request.getfixturevalue("falkordb")
        return {"neo4j_uri": server.bolt_url, "neo4j_user": "falkordb"}
    return {}
