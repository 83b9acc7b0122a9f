"""The retrieval-quality benchmark: its metric, its CLI, and a run on two QMSum meetings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import retrieval_quality as rq
from bot.models import Passage
from tests.support import REPO

SCRIPT = REPO / "benchmarks" / "retrieval_quality.py"


def passage(text: str) -> Passage:
    return Passage(text=text, source="s", score=1.0)


def test_context_charges_each_passage_at_least_600_characters() -> None:
    short = [passage(f"short {i}") for i in range(12)]
    assert rq.build_context(short).split() == " ".join(f"short {i}" for i in range(10)).split()
    long = [passage("a" * 2500), passage("b" * 2500), passage("c" * 1001), passage("d" * 10)]
    context = rq.build_context(long)
    assert "a" * 2500 in context and "b" * 2500 in context
    assert "c" not in context and "d" not in context  # 1,001 more would exceed 6,000
    assert rq.build_context([passage("x" * 6001)]) == ""


def test_answer_keys_follow_the_dataset_readme() -> None:
    turns = [
        {"speaker": "A", "content": "Okay ."},
        {"speaker": "B", "content": "So   the  remote " + "control " * 20},
        {"speaker": "C", "content": "Yes , the BUTTONS should be big enough for children ."},
        {"speaker": "D", "content": "Mm-hmm ."},
    ]
    keys = rq.answer_keys(turns, [["0", "2"]])
    # Normalised, turns of 40+ characters only, first 80 characters.
    assert keys == (
        ("so the remote " + "control " * 20)[:80],
        "yes , the buttons should be big enough for children .",
    )
    assert rq.answer_keys(turns, [["0", "0"], ["3", "3"]]) == ("mm-hmm .",)  # the longest


def test_unknown_stores_and_a_missing_dataset_exit_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rq.main(["--dataset", str(tmp_path / "absent")]) == 2
    assert "QMSum dataset not found" in capsys.readouterr().err
    (tmp_path / "m.json").write_text('{"meeting_transcripts": []}', encoding="utf-8")
    assert rq.main(["--dataset", str(tmp_path), "--stores", "nosuch"]) == 2
    assert "unknown store(s) nosuch; available: sqlite" in capsys.readouterr().err


@pytest.mark.usefixtures("qmsum_dir")
def test_the_benchmark_runs_on_two_meetings(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--stores", "sqlite", "--limit", "2", "--json", "--doc", str(doc)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert (report["store"], report["meetings"]) == ("sqlite", 2)
    assert report["questions"] > 0 and 0 <= report["answered"] <= report["questions"]
    assert report["share"] == round(report["answered"] / report["questions"], 3)
    assert 0 <= report["not_found"] <= report["questions"] - report["answered"]
    # The floor turns questions away (some real ones too), never answers more.
    assert report["floor_answered"] <= report["answered"]
    assert report["floor_not_found"] >= report["not_found"]
    # Two meetings hold none of the off-topic questions' words often enough to answer them;
    # without the floor, a question sharing any word with them gets passages.
    assert report["offtopic"] == len(rq.load_offtopic()) == 64
    assert report["offtopic_share"] == round(report["offtopic_not_found"] / 64, 3) > 0.8
    assert report["offtopic_floor_off"] < report["offtopic_not_found"]
    assert 0 < report["search_ms_p50"] <= report["search_ms_p95"]
    assert report["chunks"] > 0
    text = doc.read_text()
    assert "<!-- retrieval_quality_sqlite:start -->" in text
    found_nothing = (
        f"| off-topic questions found nothing, floor on (off) | {report['offtopic_not_found']} / 64"
    )
    assert found_nothing in text
