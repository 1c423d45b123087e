"""Standard Webhooks signatures (https://www.standardwebhooks.com/), both directions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of ``whsec_…``."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``{id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_matches(
    secrets_: list[str], msg_id: str, timestamp: int, body: bytes, header: str
) -> bool:
    """True if any ``v1`` signature in the space-separated header matches any secret.

    Every candidate is compared in constant time and all of them are checked, so
    timing reveals neither which signature nor which secret matched.
    """
    offered = [part.split(",", 1)[1] for part in header.split() if part.startswith("v1,")]
    matched = False
    for secret in secrets_:
        expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
        for candidate in offered:
            if hmac.compare_digest(expected, candidate.encode()):
                matched = True
    return matched


def hash_api_key(key: str) -> str:
    """API keys are 256-bit random tokens, so a plain SHA-256 is a safe, fast lookup hash."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "lf_" + secrets.token_urlsafe(32)
