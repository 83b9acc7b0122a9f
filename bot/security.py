"""Twilio signature check against the public URL, and local mode's loopback rule."""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from flask import Request
from twilio.request_validator import RequestValidator

from bot.settings import Settings

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Twilio-Signature"


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def signed_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path + query when set, else request.url."""
    if not settings.public_base_url:
        return request.url
    query = request.query_string.decode("latin-1")
    path = request.script_root + request.path
    return settings.public_base_url + path + (f"?{query}" if query else "")


# Headers a tunnel or proxy adds: ngrok's agent connects from 127.0.0.1, so loopback
# alone would let anyone holding the public tunnel URL in.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")


def is_local_client(request: Request) -> bool:
    """A client on this machine talking to us directly, not through a tunnel or proxy."""
    return is_loopback(request.remote_addr) and not any(
        header in request.headers for header in FORWARDING_HEADERS
    )


def verify_twilio_request(request: Request, settings: Settings) -> bool:
    """True when the request may reach any data (see SPEC.md, local mode)."""
    if settings.local_mode:
        if not is_local_client(request):
            logger.warning(
                "local mode (no TWILIO_AUTH_TOKEN) serves this machine only: refused a "
                "forwarded or remote request; set TWILIO_AUTH_TOKEN to accept Twilio's"
            )
            return False
        return True
    if not settings.validate_signature:
        logger.warning("twilio.validate_signature is false: accepting an unsigned request")
        return True
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    return _validator(settings.twilio_auth_token).validate(
        signed_url(request, settings), request.form, signature
    )
