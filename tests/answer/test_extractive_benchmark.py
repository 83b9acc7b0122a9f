"""benchmarks/extractive_quality.py: what counts as quoting an answer turn, and its section."""

from __future__ import annotations

from benchmarks import extractive_quality as eq
from tests.support import QMSUM_DIR

TURN = eq.normalise(
    "So the budget , okay . We 've got twenty five Euro for each remote .  "
    "And a profit aim of fifty million Euro for the whole project ."
)


def quotes(reply: str) -> bool:
    return eq.quotes(eq.reply_pieces(reply), [TURN])


def test_a_quote_is_a_sentence_of_40_characters_inside_an_annotated_turn():
    # The speaker label the answerer adds is not part of the quote; case and spacing are
    # normalised; a clipped sentence quotes what it keeps.
    assert quotes(
        "• Project Manager: We 've got twenty five euro for each remote . Marketing: Ok ."
    )
    assert quotes("• Marketing: Right . PM: And a profit aim of fifty million Euro for the wh…")
    assert not quotes("• Project Manager: So the budget , okay .")  # under 40 characters
    assert not quotes("• PM: We 've got twenty five Euro for each remote control .")  # not in it
    # Only the bullets are quotes: the intro and the sources line are the answerer's own.
    assert not quotes("We 've got twenty five Euro for each remote .  And that is all.\nSources: a")


def test_the_script_writes_its_section(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    args = ["--doc", str(doc), "--limit", "2"] if QMSUM_DIR.is_dir() else ["--doc", str(doc)]
    assert eq.main(args) == 0
    text = doc.read_text()
    assert "<!-- extractive_quality:start -->" in text and "<!-- extractive_quality:end -->" in text
    assert "| sample: reply contains the phrase |" in text
    assert "Target: sample share at least 0.9" in text and "**met**" in text
