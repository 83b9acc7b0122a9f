"""`flask --app app stats`: usage read from whichever history store is configured."""

from __future__ import annotations

import pytest

from tests.support import ALICE, BOB, twilio_form


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_stats_prints_usage_from_the_configured_store(request, make_app, signed_post, backend):
    overrides = {"database_url": request.getfixturevalue("pg_url")} if backend == "postgres" else {}
    app = make_app(**overrides)
    client = app.test_client()

    for body, sender in [
        ("@agent who attended the UNEA meeting?", ALICE),
        ("@agent Who attended the UNEA meeting", BOB),
        ("@agent what did we decide about Germany?", ALICE),
    ]:
        assert signed_post(client, twilio_form(body, sender)).status_code == 200

    result = app.test_cli_runner().invoke(args=["stats", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert f"{'postgresql' if backend == 'postgres' else 'sqlite'} history store" in result.output
    assert "Active senders: 2" in result.output
    assert "3 from 2 sender(s)" in result.output
    lines = result.output.splitlines()
    top = lines[lines.index("Most asked questions:") + 1]
    assert top.strip() == "2 x who attended the unea meeting"
    assert "+44" not in result.output  # no phone number on screen
