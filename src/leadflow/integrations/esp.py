"""Email service providers' event webhooks (Postmark, SendGrid, Mailgun): each verified with
the provider's own scheme, then read as bounce and complaint reports. Amazon SES (through
SNS) is in ``integrations.ses``. Events of other kinds (deliveries, opens, clicks) are
counted as ignored."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from leadflow.ingest.errors import InvalidSignature, MalformedBody
from leadflow.ingest.verify import parse_json
from leadflow.lifecycle.bounces import BounceKind, Report

MAX_DIAGNOSTIC = 2000


@dataclass
class Reports:
    """What one delivery says: the reports leadflow applies, and how many events it skips."""

    reports: list[Report] = field(default_factory=list)
    ignored: int = 0
    subscription_confirmed: bool = False


def _malformed(detail: str) -> MalformedBody:
    return MalformedBody(detail, message=detail)


def text_of(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text[:MAX_DIAGNOSTIC] if text else None


def email_of(value: Any) -> str | None:
    text = text_of(value)
    if text is None or "@" not in text or len(text) > 320:
        return None
    return text.lower()


def external_id_of(value: Any) -> str | None:
    text = text_of(value)
    return text if text is not None and len(text) <= 255 and "\x00" not in text else None


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (Postmark, SES) or Unix seconds (SendGrid, Mailgun), in UTC."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        if isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            if "." in text:  # .NET writes 7 fraction digits: keep 6
                head, _, tail = text.partition(".")
                digits = "".join(c for c in tail if c.isdigit())
                text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
            parsed = dt.datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


# -- Postmark --------------------------------------------------------------------------------

POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError"}


def verify_postmark(headers: Mapping[str, str], secret: str) -> None:
    """Postmark sends the HTTP basic auth credentials put in the webhook URL
    (``https://user:password@…``); the secret is that ``user:password``."""
    header = headers.get("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    if scheme.lower() != "basic" or not hmac.compare_digest(given, secret.encode()):
        raise InvalidSignature("Missing or wrong HTTP basic auth credentials (Postmark).")


def read_postmark(body: bytes) -> Reports:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise _malformed("a Postmark webhook is a JSON object")
    out = Reports()
    record = data.get("RecordType")
    kind: BounceKind | None = None
    if record == "SpamComplaint":
        kind = BounceKind.COMPLAINT
    elif record == "Bounce":
        bounce_type = data.get("Type")
        if bounce_type in POSTMARK_HARD:
            kind = BounceKind.HARD
        elif bounce_type in POSTMARK_SOFT:
            kind = BounceKind.SOFT
        elif bounce_type == "SpamComplaint":
            kind = BounceKind.COMPLAINT
    if kind is None:
        out.ignored = 1
        return out
    email = email_of(data.get("Email"))
    external_id = external_id_of(data.get("ID"))
    occurred_at = parse_time(data.get("BouncedAt"))
    if email is None or external_id is None or occurred_at is None:
        raise _malformed("a Postmark bounce needs ID, Email and BouncedAt")
    out.reports.append(
        Report(
            provider="postmark",
            external_id=external_id,
            kind=kind,
            email=email,
            occurred_at=occurred_at,
            diagnostic=text_of(data.get("Details")) or text_of(data.get("Description")),
        )
    )
    return out


# -- SendGrid --------------------------------------------------------------------------------

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def sendgrid_key(secret: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows for a signed event webhook (base64 DER, or PEM)."""
    try:
        if secret.lstrip().startswith("-----BEGIN"):
            key = load_pem_public_key(secret.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(secret.split()), validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("not a SendGrid verification key (base64 public key)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("a SendGrid verification key is an ECDSA P-256 public key")
    return key


def verify_sendgrid(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """ECDSA P-256 with SHA-256 over the timestamp header followed by the raw body."""
    signature = headers.get(SENDGRID_SIGNATURE) or ""
    timestamp = headers.get(SENDGRID_TIMESTAMP) or ""
    refused = InvalidSignature(
        f"Missing or wrong {SENDGRID_SIGNATURE} for {SENDGRID_TIMESTAMP} (SendGrid)."
    )
    if not signature or not timestamp:
        raise refused
    try:
        key = sendgrid_key(secret)
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (ValueError, binascii.Error, BadSignature):
        raise refused from None


def read_sendgrid(body: bytes) -> Reports:
    data = parse_json(body)
    if not isinstance(data, list):
        raise _malformed("a SendGrid event webhook is a JSON array of events")
    out = Reports()
    for event in data:
        if not isinstance(event, dict):
            raise _malformed("each SendGrid event is a JSON object")
        name = event.get("event")
        kind: BounceKind | None = None
        if name == "spamreport":
            kind = BounceKind.COMPLAINT
        elif name == "bounce":
            # ``type``: "bounce" (the receiving server refused the address) or "blocked"
            # (it refused this message for now).
            kind = BounceKind.SOFT if event.get("type") == "blocked" else BounceKind.HARD
        if kind is None:
            out.ignored += 1
            continue
        email = email_of(event.get("email"))
        external_id = external_id_of(event.get("sg_event_id"))
        occurred_at = parse_time(event.get("timestamp"))
        if email is None or external_id is None or occurred_at is None:
            raise _malformed("a SendGrid bounce needs email, timestamp and sg_event_id")
        out.reports.append(
            Report(
                provider="sendgrid",
                external_id=external_id,
                kind=kind,
                email=email,
                occurred_at=occurred_at,
                message_id_header=text_of(event.get("smtp-id")),
                diagnostic=text_of(event.get("reason")),
            )
        )
    return out


# -- Mailgun ---------------------------------------------------------------------------------


def verify_mailgun(data: Any, secret: str) -> None:
    """Hex HMAC-SHA256 of ``timestamp`` followed by ``token`` under the HTTP webhook signing
    key, both in the body's ``signature`` object."""
    refused = InvalidSignature("Missing or wrong signature object (Mailgun).")
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict):
        raise refused
    timestamp, token, given = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(v, str) and v for v in (timestamp, token, given)):
        raise refused
    expected = hmac.new(secret.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(given)):
        raise refused


def read_mailgun(body: bytes, secret: str) -> Reports:
    data = parse_json(body)
    verify_mailgun(data, secret)
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise _malformed("a Mailgun webhook carries an event-data object")
    out = Reports()
    name = event.get("event")
    kind: BounceKind | None = None
    if name == "complained":
        kind = BounceKind.COMPLAINT
    elif name == "failed":
        kind = BounceKind.HARD if event.get("severity") == "permanent" else BounceKind.SOFT
    if kind is None:
        out.ignored = 1
        return out
    email = email_of(event.get("recipient"))
    external_id = external_id_of(event.get("id"))
    occurred_at = parse_time(event.get("timestamp"))
    if email is None or external_id is None or occurred_at is None:
        raise _malformed("a Mailgun event needs id, recipient and timestamp")
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    status = event.get("delivery-status")
    diagnostic = None
    if isinstance(status, dict):
        diagnostic = text_of(status.get("description")) or text_of(status.get("message"))
    out.reports.append(
        Report(
            provider="mailgun",
            external_id=external_id,
            kind=kind,
            email=email,
            occurred_at=occurred_at,
            message_id_header=text_of(headers.get("message-id"))
            if isinstance(headers, dict)
            else None,
            diagnostic=diagnostic or text_of(event.get("reason")),
        )
    )
    return out
