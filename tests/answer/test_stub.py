"""The Mistral stand-in speaks the API well enough for the real SDK, and stops fast."""

from __future__ import annotations

import math
import threading
import time

import httpx2
import pytest
from mistralai.client import Mistral

from tests.fakes.mistral_server import EMBEDDING_DIMENSIONS, MistralStub
from tests.support import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_embeddings_and_models_parse_with_the_real_sdk(stub):
    with httpx2.Client() as http:
        client = Mistral(api_key=API_KEY, server_url=stub.url, client=http)
        first = client.embeddings.create(model="mistral-embed", inputs=["budget meeting", "x"])
        again = client.embeddings.create(model="mistral-embed", inputs="budget meeting")
        models = client.models.list()
    vectors = [item.embedding for item in first.data]
    assert [len(v) for v in vectors] == [EMBEDDING_DIMENSIONS, EMBEDDING_DIMENSIONS]
    assert math.isclose(sum(v * v for v in vectors[0]), 1.0)
    assert again.data[0].embedding == vectors[0]  # deterministic
    assert "mistral-small-latest" in {m.id for m in models.data}
    assert [r.path for r in stub.requests] == ["/v1/embeddings"] * 2 + ["/v1/models"]


def test_missing_key_is_unauthorized(stub):
    with httpx2.Client() as http:
        response = http.post(f"{stub.url}/v1/chat/completions", json={"messages": []})
    assert response.status_code == 401


def test_statuses_are_served_in_order_then_200(stub):
    stub.statuses = [429, 500]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client() as http:
        codes = [
            http.post(f"{stub.url}/v1/chat/completions", json=body, headers=headers).status_code
            for _ in range(3)
        ]
    assert codes == [429, 500, 200]
    stub.reset()
    assert stub.requests == [] and stub.statuses == []


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_trickled_response_is_the_same_response_slowly(stub, mode):
    stub.reply, stub.trickle, stub.trickle_interval = "Slowly.", mode, 0.001
    with httpx2.Client(timeout=2) as http:
        response = http.post(f"{stub.url}/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.json()["choices"][0]["message"]["content"] == "Slowly."


def test_an_endless_response_keeps_coming(stub):
    stub.trickle = "endless"
    received = 0
    with httpx2.Client(timeout=2) as http:
        url = f"{stub.url}/v1/chat/completions"
        with http.stream("POST", url, json=CHAT, headers=AUTH) as response:
            for chunk in response.iter_bytes():
                assert not chunk.strip()  # JSON whitespace, never a value
                received += len(chunk)
                if received > 1024:
                    break
    assert response.headers["transfer-encoding"] == "chunked" and received > 1024


def test_stop_is_fast_with_a_hanging_request():
    stub = MistralStub().start()
    stub.delay = 30
    errors: list[Exception] = []

    def call() -> None:
        with httpx2.Client(timeout=10) as http:
            try:
                http.post(f"{stub.url}/v1/chat/completions", json={}, headers={"a": "b"})
            except httpx2.TransportError as exc:
                errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not stub.requests:
        time.sleep(0.01)
    started = time.monotonic()
    stub.stop()
    assert time.monotonic() - started < 1.0
    caller.join(timeout=5)
    assert not caller.is_alive() and errors
