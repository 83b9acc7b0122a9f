"""Who gets answers: allowlist, refusals, admins, local mode; and signatures behind proxies."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from bot.chat.access import AccessPolicy, refusal_text
from bot.settings import Settings
from tests.support import (
    ALICE,
    BOB,
    PUBLIC_URL,
    TOKEN,
    WEBHOOK,
    reply_texts_of,
    sign,
    stored_rows,
    twilio_form,
)


def ask(app, signed_post, body, sender):
    return reply_texts_of(signed_post(app.test_client(), twilio_form(body, sender)))


def test_listed_sender_gets_answers(make_app, signed_post):
    app = make_app(allowed_senders=(ALICE,))
    (reply,) = ask(app, signed_post, "@agent who attended the UNEA meeting?", ALICE)
    assert "Amara Okafor" in reply


def test_refused_sender_gets_one_reply_a_day_and_touches_nothing(spied_app, signed_post):
    app = spied_app(allowed_senders=(ALICE,))
    handler = app.extensions["bot"].handler
    (first,) = ask(app, signed_post, "@agent who attended the UNEA meeting?", BOB)
    assert "+447700900002" in first and "allowed_senders" in first
    assert ask(app, signed_post, "@agent who attended the UNEA meeting?", BOB) == []
    assert handler.knowledge.queries == [] and handler.answerer.calls == []
    assert stored_rows(app) == 0
    assert stored_rows(app, "SELECT COUNT(*) FROM deliveries") == 0


def test_star_admits_everyone(make_app, signed_post):
    app = make_app(allowed_senders=("*",))
    assert "Amara Okafor" in ask(app, signed_post, "@agent UNEA attendees?", BOB)[0]


def test_empty_list_admits_nobody_when_a_token_is_set(spied_app, signed_post):
    app = spied_app(allowed_senders=())
    handler = app.extensions["bot"].handler
    (reply,) = ask(app, signed_post, "@agent UNEA attendees?", ALICE)
    assert "allowed_senders" in reply
    assert handler.answerer.calls == []


ALICE_BY_SMS = ALICE.replace("whatsapp:", "")  # Twilio's SMS webhooks send bare numbers


@pytest.mark.parametrize("allowed", [(ALICE,), ("*",)])
def test_an_sms_from_a_listed_whatsapp_number_is_another_sender(spied_app, signed_post, allowed):
    app = spied_app(allowed_senders=allowed, admin_senders=(ALICE,))
    handler = app.extensions["bot"].handler
    ask(app, signed_post, "@agent who attended the UNEA meeting?", ALICE)
    assert len(handler.answerer.calls) == 1
    (reply,) = ask(app, signed_post, "@agent sources", ALICE_BY_SMS)
    assert reply == refusal_text("sms:" + ALICE_BY_SMS) and "sms:+44" in reply
    for body in ("@agent stats", "@agent who attended?"):  # one refusal a day, then silence
        assert ask(app, signed_post, body, ALICE_BY_SMS) == []
    assert len(handler.answerer.calls) == 1 and len(handler.knowledge.queries) == 1


def test_a_listed_sms_sender_has_a_history_of_its_own(spied_app, signed_post):
    app = spied_app(allowed_senders=(ALICE, "sms:" + ALICE_BY_SMS))
    handler = app.extensions["bot"].handler
    ask(app, signed_post, "@agent who attended the UNEA meeting?", ALICE)
    (sources,) = ask(app, signed_post, "@agent sources", ALICE_BY_SMS)
    assert "UNEA" not in sources  # ALICE's WhatsApp conversation is not this sender's
    ask(app, signed_post, "@agent why was that decided?", ALICE_BY_SMS)
    assert "UNEA" not in handler.knowledge.queries[-1]  # no follow-up on her WhatsApp turn


def test_allowed_senders_from_the_environment_admit_those_listed_and_only_them(
    tmp_path, signed_post
):
    from bot import create_app

    config = tmp_path / "config.json"  # the committed file admits everyone...
    config.write_text('{"whatsapp": {"allowed_senders": ["*"]}}')
    app = create_app(  # ...the deployment's variable narrows it, no number in git
        environ={
            "CONFIG_PATH": str(config),
            "DATA_DIR": str(tmp_path / "data"),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": PUBLIC_URL,
            "ALLOWED_SENDERS": ALICE.removeprefix("whatsapp:") + ", +447700900777",
        }
    )
    try:
        (answer,) = ask(app, signed_post, "@agent help", ALICE)
        assert "reset" in answer
        (refusal,) = ask(app, signed_post, "@agent help", BOB)
        assert refusal == refusal_text(BOB)
    finally:
        app.extensions["bot"].close()


def test_admins_are_allowed_even_when_not_listed():
    policy = AccessPolicy(
        Settings(twilio_auth_token=TOKEN, allowed_senders=(ALICE,), admin_senders=(BOB,))
    )
    assert policy.allows(BOB) and policy.is_admin(BOB)
    assert policy.allows(ALICE) and not policy.is_admin(ALICE)
    assert not policy.allows("whatsapp:+15555550100")


def test_local_mode_treats_every_sender_as_allowed():
    policy = AccessPolicy(Settings(twilio_auth_token="", allowed_senders=()))
    assert policy.allows("whatsapp:+15555550100")


def post_raw(client, form, signature, **kwargs):
    return client.post(
        WEBHOOK,
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature, **kwargs.pop("headers", {})},
        **kwargs,
    )


@pytest.mark.parametrize(
    ("configured", "twilio_called"),
    [
        ("https://bot.example.com", "https://bot.example.com:443"),
        ("https://bot.example.com:443", "https://bot.example.com"),
    ],
)
def test_default_port_added_or_removed_still_validates(make_app, configured, twilio_called):
    client = make_app(public_base_url=configured).test_client()
    form = twilio_form("@agent help")
    assert post_raw(client, form, sign(twilio_called + WEBHOOK, form)).status_code == 200


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"}


def test_forwarded_headers_are_ignored_without_proxy_hops(make_app):
    client = make_app(public_base_url="", proxy_hops=0).test_client()
    form = twilio_form("@agent help")
    response = post_raw(client, form, sign(PUBLIC_URL + WEBHOOK, form), headers=FORWARDED)
    assert response.status_code == 403


def test_one_trusted_proxy_hop_makes_the_forwarded_url_count(make_app):
    client = make_app(public_base_url="", proxy_hops=1).test_client()
    form = twilio_form("@agent help")
    response = post_raw(client, form, sign(PUBLIC_URL + WEBHOOK, form), headers=FORWARDED)
    assert response.status_code == 200


def test_a_forged_extra_forwarded_host_does_not_help_a_forgery(make_app):
    client = make_app(public_base_url="", proxy_hops=1).test_client()
    form = twilio_form("@agent help")
    # The client prepends its own value; the one trusted proxy appends the real host.
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example.com, bot.example.com",
    }
    forged = sign("https://evil.example.com" + WEBHOOK, form)
    assert post_raw(client, form, forged, headers=headers).status_code == 403


def test_public_base_url_wins_over_any_forwarded_header(make_app):
    client = make_app(proxy_hops=1).test_client()
    form = twilio_form("@agent help")
    evil = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"}
    signed_for_evil = sign("https://evil.example.com" + WEBHOOK, form)
    assert post_raw(client, form, signed_for_evil, headers=evil).status_code == 403
    form = twilio_form("@agent help")
    assert post_raw(client, form, sign(PUBLIC_URL + WEBHOOK, form), headers=evil).status_code == 200


def test_stats_shows_a_member_their_own_counts_and_an_admin_the_team(make_app, signed_post):
    app = make_app(allowed_senders=(ALICE, BOB), admin_senders=(BOB,))
    for question in ["who attended the UNEA meeting?", "what about Germany?"]:
        ask(app, signed_post, f"@agent {question}", ALICE)
    ask(app, signed_post, "@agent what about Germany?", BOB)
    (mine,) = ask(app, signed_post, "@agent stats", ALICE)
    assert mine == "*Your questions:* 2 in the last 7 days, 2 in total (2 today)."
    assert "Team usage" not in mine
    (team,) = ask(app, signed_post, "@agent stats", BOB)
    assert team.startswith("*Team usage, last 7 days*")
    assert "3 question(s) from 2 sender(s)" in team
    assert "Questions: 3 from 2 active sender(s)" in team
    assert "1. what about germany (2×)" in team  # normalised: case and punctuation
    assert "+44" not in team  # the admin view names no one
