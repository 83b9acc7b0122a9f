"""The app with a Mistral key and no graph: the SQLite store's hybrid retrieval end to end,
`check` on the vectors' model, and `ingest --reembed`."""

from __future__ import annotations

import re
from pathlib import Path

from bot.answer.mistral import MistralEmbedder
from bot.knowledge.ingest import ingest_paths
from bot.knowledge.sqlite_fts import SqliteKnowledgeStore
from tests.support import API_KEY, SAMPLE, reply_texts_of, twilio_form

VECTORS_OK = "OK      knowledge vectors: mistral-embed/1024 for all chunks (hybrid)"


def passages_sent(mistral) -> list[str]:
    """The passages of the last prompt the model was sent."""
    prompt = mistral.chat_requests[-1]["messages"][-1]["content"]
    return re.split(r"\n\[\d+\] source: ", prompt)[1:]


def ask(app, signed_post, text: str) -> str:
    [reply] = reply_texts_of(signed_post(app.test_client(), twilio_form(f"@agent {text}")))
    return reply


QUESTION = "Who will archive the workplan?"


def lexical_only(passage: str) -> bool:
    """Whether full text could have found this passage for QUESTION."""
    return "archive" in passage.lower() or "workplan" in passage.lower()


def test_a_question_is_answered_from_passages_of_both_legs(make_app, mistral, signed_post) -> None:
    app = make_app(mistral_api_key=API_KEY, mistral_server_url=mistral.url)
    reply = ask(app, signed_post, QUESTION)
    assert reply.startswith("Stub answer to:")
    passages = passages_sent(mistral)
    assert "archive the Germany workplan" in passages[0]
    # The vector leg adds passages with neither word.
    assert not all(map(lexical_only, passages))
    questions = [r.json for r in mistral.requests if r.path == "/v1/embeddings"][-1]
    assert (questions.get("input") or questions.get("inputs")) == [QUESTION]


def test_check_reports_a_model_change_and_ingest_reembed_fixes_it(
    make_app, settings_for, mistral, signed_post
) -> None:
    # The knowledge file was filled while another embedding model was configured.
    data = Path(settings_for().data_dir)
    data.mkdir(parents=True)
    old = MistralEmbedder(API_KEY, server_url=mistral.url)
    old.name = "old-embed"
    with SqliteKnowledgeStore(str(data / "knowledge.sqlite3"), embedder=old) as store:
        ingest_paths(store, [str(SAMPLE)], progress=False)
    app = make_app(ingest=False, mistral_api_key=API_KEY, mistral_server_url=mistral.url)
    runner = app.test_cli_runner()
    lines = runner.invoke(args=["check"]).output.splitlines()
    assert (
        "WARNING knowledge vectors are old-embed/1024 but the embedding model is "
        "mistral-embed/1024: questions are searched by full text only; run flask --app app "
        "ingest --reembed" in lines
    )
    ask(app, signed_post, QUESTION)
    assert all(map(lexical_only, passages_sent(mistral)))  # full text only

    mistral.reset()
    result = runner.invoke(args=["ingest", "--reembed"])
    assert result.exit_code == 0, result.output
    assert (
        "Vectors of mistral-embed/1024: 25 chunks embedded, 0 reused, 25 of other models "
        "replaced." in result.output
    )
    sent = [r.json for r in mistral.requests if r.path == "/v1/embeddings"]
    assert sum(len(b.get("input") or b.get("inputs")) for b in sent) == 25
    assert VECTORS_OK in runner.invoke(args=["check"]).output.splitlines()
    ask(app, signed_post, QUESTION)
    assert not all(map(lexical_only, passages_sent(mistral)))  # hybrid again
    # With paths, new files are ingested first; the vectors are already the model's.
    again = runner.invoke(args=["ingest", "--reembed", str(SAMPLE)])
    assert again.exit_code == 0 and "0 chunks embedded" in again.output


def test_ingest_reembed_needs_an_embedding_model(make_app) -> None:
    runner = make_app(ingest=False).test_cli_runner()
    result = runner.invoke(args=["ingest", "--reembed"])
    assert result.exit_code == 1
    assert "--reembed: the sqlite store has no vectors to rebuild here" in result.output
    missing = runner.invoke(args=["ingest"])
    assert missing.exit_code == 2 and "Missing argument 'PATHS...'" in missing.output
