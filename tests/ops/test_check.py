"""`flask --app app check`: exit 0 when healthy, one line and exit 1 per kind of problem."""

from __future__ import annotations

import pytest

from tests.services import free_port
from tests.support import ALICE

GOOD = {
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": "fedcba9876543210" * 2,
    "public_base_url": "https://bot.example.com",
    "allowed_senders": (ALICE,),
}


def check(make_app, **overrides):
    app = make_app(**{**GOOD, **overrides})
    result = app.test_cli_runner().invoke(args=["check"])
    return result.exit_code, result.output.splitlines()


def test_a_healthy_setup_exits_0(make_app, mistral):
    code, lines = check(make_app, mistral_api_key="k", mistral_server_url=mistral.url)
    assert code == 0, lines
    assert lines[-1] == "0 error(s), 0 warning(s)"
    assert any(
        line.startswith("OK      llm (mistral, mistral-small-latest): answers in") for line in lines
    )
    assert (
        "OK      Twilio webhook URL to configure: "
        "https://bot.example.com/whatsapp/webhook (HTTP POST)" in lines
    )
    assert any("knowledge (sqlite): answers in" in line and "5 documents" in line for line in lines)
    assert "OK      knowledge vectors: mistral-embed/1024 for all chunks (hybrid)" in lines
    # The check itself asks for the model list only (ingest embedded the sample before).
    assert [r.path for r in mistral.requests if r.path != "/v1/embeddings"] == ["/v1/models"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"twilio_account_sid": "AC123"},
            "ERROR   TWILIO_ACCOUNT_SID: should be AC followed by 32",
        ),
        ({"twilio_auth_token": "not-a-token"}, "ERROR   TWILIO_AUTH_TOKEN: should be 32 hex"),
        (
            {"public_base_url": "https://bot.example.com/whatsapp/webhook"},
            "ERROR   PUBLIC_BASE_URL must not include /whatsapp/webhook",
        ),
    ],
)
def test_each_twilio_problem_is_an_error_line(make_app, overrides, expected):
    code, lines = check(make_app, **overrides)
    assert code == 1
    assert any(expected in line for line in lines), lines


def test_unreachable_redis_is_an_error(make_app):
    code, lines = check(make_app, ratelimit_storage_uri=f"redis://127.0.0.1:{free_port()}")
    assert code == 1
    assert (
        "ERROR   rate-limit storage (redis): not reachable (falls back to per-process memory)"
        in lines
    )


def test_a_rejected_mistral_key_is_an_error(make_app, mistral):
    mistral.statuses = [401] * 2  # the sample's embedding at ingest, then the check's call
    code, lines = check(make_app, mistral_api_key="bad", mistral_server_url=mistral.url)
    assert code == 1
    assert "ERROR   llm (mistral, mistral-small-latest): not reachable (http 401)" in lines


def test_unreachable_mistral_is_an_error(make_app):
    code, lines = check(
        make_app, mistral_api_key="k", mistral_server_url=f"http://127.0.0.1:{free_port()}"
    )
    assert code == 1
    assert any(
        line.startswith("ERROR   llm (mistral") and "connection error" in line for line in lines
    )


def test_an_empty_knowledge_base_is_a_warning(make_app):
    app = make_app(ingest=False, **GOOD)
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0
    assert "WARNING the knowledge base is empty: run flask --app app ingest PATH" in result.output


def test_the_bundled_sample_beside_own_documents_is_a_warning(make_app, tmp_path):
    # The sample alone is the demo (test_a_healthy_setup_exits_0 has no warning for it).
    app = make_app(**GOOD)
    own = tmp_path / "minutes"
    own.mkdir()
    (own / "board.md").write_text("# Board minutes\n\nThe board met.\n")
    assert app.test_cli_runner().invoke(args=["ingest", str(own)]).exit_code == 0
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0
    assert (
        "WARNING the knowledge base holds 5 documents of the fictional bundled sample next "
        "to 1 of your own, and answers from both: remove them with flask --app app remove "
        "sample/" in result.output.splitlines()
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"allowed_senders": ("*",)}, 'whatsapp.allowed_senders is ["*"]'),
        ({"allowed_senders": ()}, "whatsapp.allowed_senders is empty: nobody gets answers"),
        ({"response_timeout_seconds": 13.5}, "leaves little margin before Twilio's 15 s limit"),
        # Twilio accepts http webhooks; only the signed URL must match.
        ({"public_base_url": "http://bot.example.com"}, "is not https: Twilio's requests"),
        ({"validate_signature": False}, "twilio.validate_signature is false"),
        ({"twilio_auth_token": ""}, "TWILIO_AUTH_TOKEN is not set: local mode"),
        ({"public_base_url": ""}, "PUBLIC_BASE_URL is not set"),
        ({"warnings": ("config.json: mistral.api_key holds a secret",)}, "holds a secret"),
    ],
)
def test_warnings_are_lines_but_exit_0(make_app, overrides, expected):
    code, lines = check(make_app, **overrides)
    assert code == 0, lines
    assert any(line.startswith("WARNING") and expected in line for line in lines), lines


def test_memory_rate_limits_with_several_workers_warn(make_app):
    code, lines = check(make_app, web_concurrency=3)
    assert code == 0
    assert any("rate limits in memory with 3 workers" in line for line in lines)


def test_without_a_config_file_check_says_defaults_not_valid(make_app, tmp_path):
    code, lines = check(make_app, config_path=str(tmp_path / "config.json"))
    assert f"OK      config: {tmp_path / 'config.json'} not found: built-in defaults" in lines
    assert not any("is valid" in line for line in lines)
