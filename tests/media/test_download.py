"""The media adapter against local stand-ins of Twilio's media endpoint and its CDN: the
credentials reach Twilio's API host and nothing else, sizes and types are checked, and the
request's Deadline bounds it all."""

from __future__ import annotations

import time

import pytest

from bot.deadline import Deadline
from bot.errors import MediaUnavailable
from bot.media import AUDIO_MAX_BYTES, TwilioMedia
from bot.media.download import MAX_REDIRECTS
from bot.settings import Settings
from tests.fakes.twilio_media import ACCOUNT_SID, AUTH_TOKEN, BASIC, Served, media_path, redirect

OGG = b"OggS\x00\x02" + bytes(200)  # the start of an Opus voice note
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
VOICE = "audio/ogg; codecs=opus"


def _published(api, cdn, *first: Served, body: bytes = OGG, **served) -> str:
    """The media URL on the API stand-in, redirecting (after `first`) to `body` on the CDN."""
    file_url = cdn.serve("/file/abc", Served(body=body, **served))
    return api.serve(media_path(), *first, redirect(file_url))


def _refused(call) -> str:
    with pytest.raises(MediaUnavailable) as caught:
        call()
    return caught.value.reason


def test_the_file_is_fetched_with_credentials_on_the_api_host_only(api, cdn, media):
    url = _published(api, cdn)
    fetched = media.fetch(url, VOICE, Deadline(5))
    assert (fetched.data, fetched.content_type, fetched.kind) == (OGG, "audio/ogg", "audio")
    assert [seen.authorization for seen in api.seen] == [BASIC]
    (file_request,) = cdn.seen
    assert file_request.path == "/file/abc"
    assert file_request.authorization is None


def test_the_settings_name_the_api_host_and_the_credentials(api, cdn):
    settings = Settings(
        twilio_media_base_url=api.base_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
    )
    url = _published(api, cdn)
    assert TwilioMedia.from_settings(settings).fetch(url, VOICE, Deadline(5)).data == OGG
    assert [seen.authorization for seen in api.seen] == [BASIC]


def test_over_https_the_credentials_reach_the_api_host_only(tls_pair, trusting):
    api, cdn = tls_pair
    url = _published(api, cdn)
    media = TwilioMedia(api.base_url, ACCOUNT_SID, AUTH_TOKEN, ssl_context=trusting)
    assert media.fetch(url, VOICE, Deadline(5)).data == OGG
    assert [seen.authorization for seen in api.seen] == [BASIC]
    assert [seen.authorization for seen in cdn.seen] == [None]


def test_a_certificate_the_client_does_not_trust_ends_before_any_request(tls_pair):
    api, cdn = tls_pair
    url = _published(api, cdn)
    media = TwilioMedia(api.base_url, ACCOUNT_SID, AUTH_TOKEN)  # the system's trust store
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "connection error"
    assert api.seen == [] and cdn.seen == []


def test_the_api_host_refuses_a_fetch_without_credentials(api, cdn):
    url = _published(api, cdn)
    no_token = TwilioMedia(api.base_url, ACCOUNT_SID, "")
    assert _refused(lambda: no_token.fetch(url, VOICE, Deadline(5))) == "http 401"
    assert api.seen[0].authorization is None and cdn.seen == []


def test_a_redirect_back_to_the_api_host_keeps_the_credentials(api, cdn, media):
    file_url = cdn.serve("/file/abc", Served(body=OGG))
    api.serve("/2010-04-01/elsewhere", redirect(file_url))
    url = api.serve(media_path(), redirect("/2010-04-01/elsewhere", 302))
    assert media.fetch(url, VOICE, Deadline(5)).data == OGG
    assert [seen.authorization for seen in api.seen] == [BASIC, BASIC]
    assert [seen.authorization for seen in cdn.seen] == [None]


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda api, cdn: cdn.url(media_path()), "refused host"),  # another port
        (lambda api, cdn: api.url(media_path()).replace("127.0.0.1", "localhost"), "refused host"),
        (lambda api, cdn: api.url(media_path()).replace("http:", "https:"), "refused host"),
        (lambda api, cdn: "https://api.twilio.com" + media_path(), "refused host"),
        (lambda api, cdn: "https://evil.example.com" + media_path(), "refused host"),
        (
            lambda api, cdn: api.url(media_path()).replace("//", f"//{ACCOUNT_SID}:x@"),
            "refused host",
        ),
        (lambda api, cdn: "", "refused host"),
        (
            lambda api, cdn: api.url(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"),
            "refused url",
        ),
        (lambda api, cdn: api.url(media_path() + "?PageSize=1000"), "refused url"),
        (lambda api, cdn: api.url(media_path() + "/../../../Calls"), "refused url"),
        (lambda api, cdn: api.url(media_path()).replace("ME", "MÉ"), "refused url"),
    ],
)
def test_a_media_url_anywhere_else_is_refused_without_a_request(api, cdn, media, make_url, reason):
    _published(api, cdn)
    assert _refused(lambda: media.fetch(make_url(api, cdn), VOICE, Deadline(5))) == reason
    assert api.seen == [] and cdn.seen == []


def test_a_type_the_bot_has_no_use_for_is_refused_without_a_request(api, cdn, media):
    url = _published(api, cdn)
    assert _refused(lambda: media.fetch(url, "image/jpeg", Deadline(5))) == "unsupported type"
    assert api.seen == [] and cdn.seen == []


@pytest.mark.parametrize(
    "location",
    ["http://cdn.example.com/file/abc", "ftp://127.0.0.1/file", "https://u:p@cdn.example.com/f"],
)
def test_a_redirect_to_plain_http_elsewhere_is_not_followed(api, cdn, media, location):
    url = api.serve(media_path(), redirect(location))
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "refused redirect"
    assert len(api.seen) == 1 and cdn.seen == []


def test_a_redirect_to_a_host_that_cannot_be_looked_up_is_a_connection_error(api, media):
    url = api.serve(media_path(), redirect("https://cdn..example.com/file"))
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "connection error"


def test_a_redirect_loop_ends(api, media):
    url = api.serve(media_path(), redirect(media_path(), 302))
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "too many redirects"
    assert len(api.seen) == MAX_REDIRECTS + 1


def test_a_file_whose_length_is_over_the_cap_is_refused_before_its_body(api, cdn, media):
    url = _published(api, cdn, body=b"", length=AUDIO_MAX_BYTES + 1)
    started = time.monotonic()
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "too large"
    assert time.monotonic() - started < 1.0  # no wait for a body that never comes


def test_a_body_that_grows_past_the_cap_is_cut_off_mid_stream(api, cdn, media):
    # No Content-Length: the body ends when the server closes, 64 KiB past the cap.
    oversized = OGG + bytes(AUDIO_MAX_BYTES - len(OGG) + 64 * 1024)
    url = _published(api, cdn, body=oversized, length=None)
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "too large"


def test_a_body_at_the_cap_is_accepted(api, cdn):
    small = TwilioMedia(api.base_url, ACCOUNT_SID, AUTH_TOKEN, max_bytes={"audio": len(OGG)})
    url = _published(api, cdn, length=None)
    assert small.fetch(url, VOICE, Deadline(5)).data == OGG


def test_a_pdf_labelled_as_audio_is_refused(api, cdn, media):
    url = _published(api, cdn, body=PDF)
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "wrong type"
    assert media.fetch(url, "application/pdf", Deadline(5)).data == PDF


def test_a_first_404_is_retried_within_the_budget(api, cdn, media):
    url = _published(api, cdn, Served(404))
    assert media.fetch(url, VOICE, Deadline(5)).data == OGG
    assert len(api.seen) == 2 and len(cdn.seen) == 1


def test_a_404_is_retried_once_only(api, media):
    url = api.serve(media_path(), Served(404))
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(5))) == "not found"
    assert len(api.seen) == 2


def test_a_404_without_budget_for_a_retry_is_final(api, cdn, media):
    url = _published(api, cdn, Served(404))
    # Enough for one request, not for the pause and another attempt.
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(0.8))) == "not found"
    assert len(api.seen) == 1 and cdn.seen == []


def test_no_budget_at_all_makes_no_request(api, cdn, media):
    url = _published(api, cdn)
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(0))) == "timeout"
    assert api.seen == []


@pytest.mark.parametrize("trickle_from", ["headers", "body"])
def test_a_trickling_server_is_cut_off_at_the_deadline(api, cdn, media, trickle_from):
    # A byte every 50 ms: each read succeeds well inside any per-read timeout.
    url = _published(api, cdn, trickle=0.05, trickle_from=trickle_from)
    started = time.monotonic()
    assert _refused(lambda: media.fetch(url, VOICE, Deadline(0.6))) == "timeout"
    assert time.monotonic() - started < 0.6 + 0.3
