"""What keeps the model call cheap under load: the SDK's per-call work cached, one pooled
connection per gunicorn thread (see docs/PERFORMANCE.md, "Webhook load")."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ConfigDict

from bot.answer import DEFAULT_POOL_SIZE, FallbackAnswerer, build_answerer, pool_size
from bot.answer.mistral.speed import speed_up_sdk
from bot.answer.prompt import build_messages
from bot.deadline import Deadline
from bot.settings import ConfigError, Settings, load_settings
from tests.support import REPO


def test_the_sdk_builds_each_pydantic_model_class_once(mistral):
    from mistralai.client.utils import queryparams, serializers

    mistral.client()  # the speed-up is applied when the first client is built
    assert hasattr(serializers.create_model, "__wrapped__"), "speed-up not applied"
    assert speed_up_sdk() is False  # applying it twice changes nothing
    config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)
    first = serializers.create_model("Unmarshaller", body=(int | None, ...), __config__=config)
    again = serializers.create_model("Unmarshaller", body=(int | None, ...), __config__=config)
    other = serializers.create_model("Unmarshaller", body=(str | None, ...), __config__=config)
    assert first is again and other is not first
    assert other(body="x").body == "x"
    assert hasattr(queryparams.get_type_hints, "__wrapped__")


def test_sdk_messages_send_the_same_json_as_dicts(stub, mistral, passages, turns):
    mistral.answer("Who attended?", passages, turns, Deadline(5))
    [request] = stub.requests
    sent = request.json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    # The same request body as the SDK sends when given the prompt builder's plain dicts.
    dicts = build_messages("Who attended?", passages, turns)
    mistral.client().chat.complete(
        model=mistral.model,
        messages=dicts,
        max_tokens=mistral.max_tokens,
        temperature=mistral.temperature,
        timeout_ms=5000,
    )
    assert stub.requests[1].json["messages"] == sent
    assert [{"role": m["role"], "content": m["content"]} for m in sent] == dicts


def test_repeated_answers_stay_correct_with_the_cached_classes(stub, mistral, passages):
    for n in range(3):
        stub.reply = f"Answer number {n}."
        answer = mistral.answer(f"Question {n}?", passages, [], Deadline(5))
        assert answer.text.startswith(f"Answer number {n}.")


def test_importing_the_adapter_patches_nothing_until_a_client_is_built():
    code = (
        "from mistralai.client.utils import serializers\n"
        "from bot.answer.mistral import MistralAnswerer\n"
        "assert not hasattr(serializers.create_model, '__wrapped__')\n"
        "MistralAnswerer('key', 'm', server_url='http://127.0.0.1:9').client()\n"
        "assert hasattr(serializers.create_model, '__wrapped__')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO)


def test_the_connection_pool_follows_the_gunicorn_threads():
    assert pool_size(Settings().gunicorn_threads) == Settings().gunicorn_threads == 128
    assert pool_size(8) == DEFAULT_POOL_SIZE
    assert pool_size(128) == 128
    assert load_settings({"GUNICORN_THREADS": "128"}, dotenv_path=None).gunicorn_threads == 128
    with pytest.raises(ConfigError, match="GUNICORN_THREADS"):
        load_settings({"GUNICORN_THREADS": "many"}, dotenv_path=None)


def test_build_answerer_sizes_the_pool_from_the_settings(make_app, stub):
    answerer = build_answerer("key", "mistral-small-latest", stub.url, threads=150)
    assert isinstance(answerer, FallbackAnswerer)
    assert answerer.primary.pool_size == 150
    answerer.close()
    app = make_app(ingest=False, mistral_api_key="key", gunicorn_threads=150)
    assert app.extensions["bot"].answerer.primary.pool_size == 150
