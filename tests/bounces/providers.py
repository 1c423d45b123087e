"""Each provider as the tests drive it: its secret, a signed delivery of one report, and a
forged one (the same body under a wrong signature)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.bounces.helpers import (
    MAILGUN_KEY,
    OTHER_KEY,
    POSTMARK_SECRET,
    SENDGRID_PUBLIC,
    TOPIC_ARN,
    mailgun_event,
    postmark_bounce,
    postmark_headers,
    sendgrid_event,
    sendgrid_headers,
    ses_notification,
    sns_signed,
)

Delivery = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Provider:
    name: str
    secret: str
    # (email, when, kind: hard|soft|complaint, our Message-ID header, event number)
    build: Callable[[str, dt.datetime, str, str, int], Delivery]
    forge: Callable[[str, dt.datetime, str, str, int], Delivery]
    # Whether the provider reports our Message-ID (else: matched by recipient and time).
    echoes_message_id: bool = True

    def __str__(self) -> str:
        return self.name


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _postmark(email: str, when: dt.datetime, kind: str, _: str, n: int) -> Delivery:
    type_ = {"hard": "HardBounce", "soft": "SoftBounce", "complaint": "SpamComplaint"}[kind]
    return _json(postmark_bounce(email, when, type_=type_, bounce_id=1000 + n)), postmark_headers()


def _postmark_forged(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    body, _ = _postmark(email, when, kind, mid, n)
    return body, postmark_headers("leadflow:wrong-password")


def _sendgrid(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    event = sendgrid_event(
        email,
        when,
        event="spamreport" if kind == "complaint" else "bounce",
        type_="blocked" if kind == "soft" else "bounce",
        smtp_id=mid,
        event_id=f"sg-event-{n}",
    )
    delivered = sendgrid_event(email, when, event="delivered", smtp_id=mid)
    body = _json([delivered, event])
    return body, sendgrid_headers(body)


def _sendgrid_forged(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    body, headers = _sendgrid(email, when, kind, mid, n)
    return body + b" ", headers  # still valid JSON, but not the bytes that were signed


def _mailgun(email: str, when: dt.datetime, kind: str, mid: str, n: int, key: str = MAILGUN_KEY):
    body = mailgun_event(
        email,
        when,
        event="complained" if kind == "complaint" else "failed",
        severity="temporary" if kind == "soft" else "permanent",
        message_id=mid.strip("<>"),
        event_id=f"mg-event-{n}",
        key=key,
    )
    return _json(body), {}


def _mailgun_forged(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    return _mailgun(email, when, kind, mid, n, key="key-not-the-signing-key")


def _ses(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    body = ses_notification(
        email,
        when,
        kind="Complaint" if kind == "complaint" else "Bounce",
        bounce_type="Transient" if kind == "soft" else "Permanent",
        message_id=mid,
        feedback_id=f"ses-feedback-{n}",
    )
    return _json(body), {}


def _ses_forged(email: str, when: dt.datetime, kind: str, mid: str, n: int) -> Delivery:
    body = json.loads(_ses(email, when, kind, mid, n)[0])
    unsigned = {k: v for k, v in body.items() if k not in ("Signature", "SignatureVersion")}
    return _json(sns_signed(unsigned, key=OTHER_KEY)), {}


PROVIDERS = [
    Provider("postmark", POSTMARK_SECRET, _postmark, _postmark_forged, echoes_message_id=False),
    Provider("sendgrid", SENDGRID_PUBLIC, _sendgrid, _sendgrid_forged),
    Provider("mailgun", MAILGUN_KEY, _mailgun, _mailgun_forged),
    Provider("ses", TOPIC_ARN, _ses, _ses_forged),
]
