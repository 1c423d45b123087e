"""Signed tokens for links in emails (unsubscribe, tracked clicks): no login needed, no forgery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

UNSUBSCRIBE = "u"
CLICK = "c"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, kind: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"{kind}.{payload}".encode(), hashlib.sha256).digest()
    return _b64(digest[:16])


@dataclass(frozen=True)
class LinkClaims:
    account_id: str
    subject_id: str  # the lead (unsubscribe) or the message (click)


def make_token(secret: str, kind: str, account_id: str, subject_id: str) -> str:
    payload = _b64(json.dumps([account_id, subject_id], separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, kind, payload)}"


def read_token(token: str) -> LinkClaims | None:
    """The unverified claims (to find the account whose secret verifies them)."""
    payload, _, _mac_part = token.partition(".")
    try:
        account_id, subject_id = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    if not isinstance(account_id, str) or not isinstance(subject_id, str):
        return None
    return LinkClaims(account_id, subject_id)


def verify_token(secret: str, kind: str, token: str) -> bool:
    payload, _, mac = token.partition(".")
    return hmac.compare_digest(_mac(secret, kind, payload).encode(), mac.encode())
