"""Speaker-aware chunking: whole turns, recorded speakers, bounded sizes."""

from __future__ import annotations

import pytest

from bot.knowledge.chunking import (
    MAX_CHARS,
    Utterance,
    chunk_prose,
    chunk_transcript,
    split_sentences,
)

SPEAKERS = ["Amara Okafor", "Jonas Weber", "Priya Raman", "Tom Fletcher"]


def _turns(count: int) -> list[Utterance]:
    """Turns of varied length (40 to ~400 characters), cycling through four speakers."""
    turns = []
    for i in range(count):
        words = " ".join(f"word{i}x{j}" for j in range(3 + (i * 7) % 45))
        turns.append(Utterance(SPEAKERS[i % 4], f"Turn {i} says {words}."))
    return turns


def test_transcript_turns_are_never_split_and_keep_their_speaker() -> None:
    turns = _turns(60)
    chunks = chunk_transcript(turns)
    lines = [line for chunk in chunks for line in chunk.text.split("\n")]
    assert lines == [t.render() for t in turns]  # every turn whole, in order, exactly once
    assert all(line.split(": ", 1)[0] in SPEAKERS for line in lines)


def test_transcript_chunks_record_exactly_their_speakers() -> None:
    for chunk in chunk_transcript(_turns(40)):
        in_text = {line.split(": ", 1)[0] for line in chunk.text.split("\n")}
        assert set(chunk.speakers) == in_text
        assert len(chunk.speakers) == len(set(chunk.speakers))


def test_transcript_chunk_sizes_are_bounded_and_packed() -> None:
    chunks = chunk_transcript(_turns(80))
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    # Greedy packing: no two neighbours would have fitted into one chunk.
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert len(a.text) + 1 + len(b.text) > MAX_CHARS
    # Turns of up to ~400 characters still fill chunks to well over half on average.
    assert sum(len(c.text) for c in chunks[:-1]) / (len(chunks) - 1) > 0.6 * MAX_CHARS


def test_a_turn_longer_than_the_maximum_is_split_at_sentence_boundaries() -> None:
    sentences = [f"Sentence number {i} explains one more detail of the plan." for i in range(60)]
    chunks = chunk_transcript([Utterance("Priya Raman", " ".join(sentences))])
    assert len(chunks) > 1
    pieces = []
    for chunk in chunks:
        assert len(chunk.text) <= MAX_CHARS
        assert chunk.speakers == ("Priya Raman",)
        for line in chunk.text.split("\n"):
            assert line.startswith("Priya Raman: ")
            assert line.endswith(".")  # cut after a sentence, never inside one
            pieces.append(line.removeprefix("Priya Raman: "))
    assert " ".join(pieces) == " ".join(sentences)


def test_a_speaker_too_long_to_be_a_name_is_not_repeated_on_every_piece() -> None:
    speaker, text = "A" * 5_000, "words and more words. " * 500
    chunks = chunk_transcript([Utterance(speaker, text)])
    assert all(len(c.text) <= MAX_CHARS and c.speakers == () for c in chunks)
    assert "".join("".join(c.text for c in chunks).split()) == "".join(f"{speaker}:{text}".split())


def test_narration_lines_have_no_speaker() -> None:
    chunks = chunk_transcript([Utterance("", "Date: 2026-03-04"), Utterance("Tom", "Hello.")])
    assert chunks[0].text == "Date: 2026-03-04\nTom: Hello."
    assert chunks[0].speakers == ("Tom",)


def test_chunking_is_deterministic() -> None:
    assert chunk_transcript(_turns(30)) == chunk_transcript(_turns(30))
    text = "\n\n".join(f"Paragraph {i}. " + "Some words here. " * (i % 9) for i in range(50))
    assert chunk_prose(text) == chunk_prose(text)


def test_prose_splits_at_paragraphs_without_cutting_them() -> None:
    paragraphs = [f"Paragraph {i} " + "talks about policy work. " * (2 + i % 12) for i in range(30)]
    paragraphs = [p.strip() for p in paragraphs]
    chunks = chunk_prose("\n\n".join(paragraphs))
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert [p for c in chunks for p in c.text.split("\n\n")] == paragraphs
    assert all(c.speakers == () for c in chunks)


def test_prose_keeps_a_heading_with_its_section() -> None:
    body = "Filler sentence for the first section. " * 30  # heading fits, section not
    text = f"{body.strip()}\n\nDecisions\n\nGermany is deprioritised for 2026."
    chunks = chunk_prose(text)
    assert any(c.text.startswith("Decisions\nGermany is deprioritised") for c in chunks)


@pytest.mark.parametrize(
    "text",
    [
        "One sentence after another. " * 200,  # a long paragraph: sentence boundaries
        "x" * 5000,  # unbroken text: hard cuts, nothing lost
        "\n".join(f"- item {i}: a line of a long list" for i in range(120)),
    ],
)
def test_prose_over_long_paragraphs_are_split_within_bounds(text: str) -> None:
    chunks = chunk_prose(text)
    assert len(chunks) > 1 and all(len(c.text) <= MAX_CHARS for c in chunks)
    assert "".join("".join(c.text.split()) for c in chunks) == "".join(text.split())


def test_split_sentences() -> None:
    assert split_sentences('He said "yes." Then we left! Why? ') == [
        'He said "yes."',
        "Then we left!",
        "Why?",
    ]
