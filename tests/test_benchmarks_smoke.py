"""The benchmarks still run: each script at tiny sizes (`make bench` runs them in full)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks._common import percentile, write_section
from tests.support import REPO

BENCHMARKS = REPO / "benchmarks"


def run(script: str, *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return done.stdout


def test_webhook_load_runs_every_scenario_against_its_baseline(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    out = run("webhook_load.py", "--quick", "--history", "sqlite", "--doc", str(doc))
    text = doc.read_text()
    assert "<!-- webhook_load:start -->" in text and "<!-- webhook_load:end -->" in text
    for row in ("| bare TwiML app | 1 |", "| bot, sqlite history | 1 |", "(b) bare TwiML app"):
        assert row in text, out
    for scenario in ("(b) bot, sqlite history", "(c) bot, sqlite history"):
        line = next(line for line in text.splitlines() if line.startswith(f"| {scenario}"))
        requests, answered, errors, late = (int(c) for c in line.split("|")[2:6])
        assert requests > 0 and answered == requests and errors == late == 0, line
    # Hung model calls (1 in 10 in scenario c) were answered by the fallback instead.
    assert "hung calls" in text and "### Targets" in text


def test_profile_request_prints_each_stage_of_a_request():
    out = run("profile_request.py", "--messages", "5", "--warmup", "2", "--no-qmsum")
    for stage in ("signature check", "rate limiter", "claim", "retrieval", "answer", "TwiML"):
        assert f"| {stage}" in out, out
    assert "| **request** |" in out and "5 of 5 replies carried a message" in out


@pytest.mark.usefixtures("qmsum_dir")
def test_retrieval_scale_reaches_exact_chunk_counts(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    args = ("--sizes", "150,400", "--stores", "sqlite", "--questions", "5", "--doc", str(doc))
    out = run("retrieval_scale.py", *args)
    assert "SQLite FTS5: 150 chunks" in out and "SQLite FTS5: 400 chunks" in out
    text = doc.read_text()
    assert "| SQLite FTS5 | 400 |" in text and "<!-- retrieval_scale:end -->" in text


@pytest.mark.usefixtures("qmsum_dir")
def test_collections_scale_times_each_reader_against_the_unfiltered_search(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    args = ("--chunks", "400", "--stores", "sqlite", "--questions", "12", "--doc", str(doc))
    out = run("collections_scale.py", *args)
    text = doc.read_text()
    assert "<!-- collections_scale:end -->" in text, out
    for reader in ("everything (no filter)", "| general |", "general + board", "all four"):
        assert reader in text, text
    assert "passages outside the reader's collections: 0" in text, text


def test_retrieval_scale_without_the_dataset_says_so(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    run("retrieval_scale.py", "--dataset", str(tmp_path / "absent"), "--doc", str(doc))
    assert "QMSum dataset not found" in doc.read_text()


def test_a_section_is_replaced_and_everything_else_kept(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# Performance\n\n## Retrieval quality\n\nhand-written\n")
    write_section("webhook_load", "## Webhook load\n\nfirst", doc)
    write_section("retrieval_scale", "## Retrieval at scale\n\nscale", doc)
    write_section("webhook_load", "## Webhook load\n\nsecond", doc)
    text = doc.read_text()
    assert "hand-written" in text and "scale" in text and "second" in text
    assert "first" not in text and text.count("<!-- webhook_load:start -->") == 1
    assert text.index("Retrieval quality") < text.index("second") < text.index("scale")


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([], 0.5) == 0.0
