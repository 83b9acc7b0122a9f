"""Twilio signature check against the public URL, and local mode's loopback-and-token rule."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path

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


# Local mode: the secret a request must carry, kept in DATA_DIR and readable by its owner
# only. Loopback and "no forwarding header" are not enough: a relay on this machine that
# adds no header (ngrok tcp, ssh -R, socat, a bare nginx proxy_pass) connects from
# 127.0.0.1 too, on behalf of anyone on the internet.
LOCAL_TOKEN_HEADER = "X-Local-Token"
LOCAL_TOKEN_FILE = "local-token"


def local_token(data_dir: str) -> str:
    """This data directory's local-mode secret, made on first use (atomically, mode 0600)."""
    path = Path(data_dir) / LOCAL_TOKEN_FILE
    if not path.exists():
        draft = path.with_name(f".{LOCAL_TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            # link() fails if another process made the file first: every process then
            # reads the same secret, complete (never a half-written one).
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return path.read_text(encoding="ascii").strip()


def is_local_client(request: Request, token: str) -> bool:
    """A client on this machine, talking to us directly, that holds the local secret."""
    direct = is_loopback(request.remote_addr) and not any(
        header in request.headers for header in FORWARDING_HEADERS
    )
    sent = request.headers.get(LOCAL_TOKEN_HEADER, "")
    return direct and bool(token) and hmac.compare_digest(sent.encode(), token.encode())


def verify_twilio_request(request: Request, settings: Settings, token: str = "") -> bool:
    """True when the request may reach any data (see SPEC.md, local mode); `token` is the
    local-mode secret."""
    if settings.local_mode:
        if not is_local_client(request, token):
            logger.warning(
                "local mode (no TWILIO_AUTH_TOKEN) serves this machine only: refused a request "
                "without the local token (`flask --app app chat --url ...` sends it); set "
                "TWILIO_AUTH_TOKEN to accept Twilio's"
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
