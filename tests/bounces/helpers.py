"""Providers' documented webhook payloads, signed the way each provider signs them (with
this file's own code: nothing here uses leadflow's verifiers), and the rows they write."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models import Enrollment, MailOutcome, Message, Suppression
from leadflow.models.notifications import IlnDelivery
from tests.support.api import auth
from tests.support.database import count

POSTMARK_SECRET = "leadflow:pm-5e2b9c0f7d"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"

# --- SendGrid: an ECDSA P-256 key pair, the public half configured in leadflow -----------

SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

# --- Amazon SNS: a signing certificate of our own, served by the test certificate source --


def _certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


SNS_KEY, SNS_CERT = _certificate()
OTHER_KEY, _ = _certificate()


@dataclass
class CertificateSource:
    """Stands in for the AWS certificate host (external): serves the test certificate and
    records every URL asked for (certificates and subscription confirmations)."""

    files: dict[str, bytes] = field(default_factory=lambda: {CERT_URL: SNS_CERT})
    asked: list[str] = field(default_factory=list)

    async def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if url in self.files:
            return self.files[url]
        if "Action=ConfirmSubscription" in url:
            return b"<ConfirmSubscriptionResponse/>"
        raise httpx.HTTPStatusError(
            "404", request=httpx.Request("GET", url), response=httpx.Response(404)
        )


# --- builders ------------------------------------------------------------------------------


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def postmark_bounce(
    email: str, when: dt.datetime, *, type_: str = "HardBounce", bounce_id: int = 4323372036
) -> dict[str, Any]:
    """Postmark's documented bounce webhook."""
    codes = {"HardBounce": 1, "SoftBounce": 4096, "Transient": 2, "SpamComplaint": 512}
    return {
        "RecordType": "SpamComplaint" if type_ == "SpamComplaint" else "Bounce",
        "MessageStream": "outbound",
        "ID": bounce_id,
        "Type": type_,
        "TypeCode": codes.get(type_, 1),
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": str(uuid.uuid4()),
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "shop@example.com",
        "BouncedAt": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.1234567Z"),
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your cart is waiting",
        "Content": "",
    }


def postmark_headers(secret: str = POSTMARK_SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def sendgrid_event(
    email: str,
    when: dt.datetime,
    *,
    event: str = "bounce",
    type_: str = "bounce",
    smtp_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One event of SendGrid's documented event webhook."""
    body: dict[str, Any] = {
        "email": email,
        "timestamp": int(when.timestamp()),
        "event": event,
        "sg_event_id": event_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22],
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": smtp_id or "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": ["cart"],
    }
    if event == "bounce":
        body |= {"reason": "500 unknown recipient", "status": "5.0.0", "type": type_}
    return body


def sendgrid_headers(body: bytes, timestamp: str = "1735732800") -> dict[str, str]:
    signature = SENDGRID_PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def mailgun_event(
    email: str,
    when: dt.datetime,
    *,
    event: str = "failed",
    severity: str = "permanent",
    message_id: str | None = None,
    event_id: str | None = None,
    key: str = MAILGUN_KEY,
) -> dict[str, Any]:
    """Mailgun's documented webhook body: the signature and the event."""
    timestamp = str(int(when.timestamp()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    data: dict[str, Any] = {
        "id": event_id or uuid.uuid4().hex[:22],
        "timestamp": when.timestamp(),
        "log-level": "error",
        "event": event,
        "recipient": email,
        "recipient-domain": email.split("@")[1],
        "message": {
            "headers": {
                "to": email,
                "message-id": message_id or "20130503192659.13651.20287@mg.example.com",
                "from": "shop@example.com",
                "subject": "Your cart is waiting",
            },
            "size": 111,
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
    }
    if event == "failed":
        data |= {
            "severity": severity,
            "reason": "bounce" if severity == "permanent" else "generic",
            "delivery-status": {
                "code": 550 if severity == "permanent" else 452,
                "message": "",
                "description": "No such mailbox" if severity == "permanent" else "Try later",
                "attempt-no": 1,
            },
        }
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": data,
    }


def _sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """Amazon SNS's documented canonical form (keys in byte order, each name then value)."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns_signed(
    message: dict[str, Any], *, key: rsa.RSAPrivateKey = SNS_KEY, version: str = "1"
) -> dict[str, Any]:
    digest: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    signature = key.sign(_sns_string_to_sign(message), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&x=1",
    }


def ses_notification(
    email: str,
    when: dt.datetime,
    *,
    kind: str = "Bounce",
    bounce_type: str = "Permanent",
    message_id: str | None = None,
    feedback_id: str | None = None,
    topic: str = TOPIC_ARN,
) -> dict[str, Any]:
    """An SNS Notification carrying SES's documented bounce or complaint notification."""
    mail = {
        "timestamp": iso(when - dt.timedelta(minutes=1)),
        "messageId": "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "source": "shop@example.com",
        "destination": [email],
        "headersTruncated": False,
        "headers": [{"name": "Message-ID", "value": message_id or "<x@example.com>"}],
        "commonHeaders": {"messageId": message_id or "<x@example.com>"},
    }
    feedback = feedback_id or f"0000013{uuid.uuid4().hex}-000000"
    if kind == "Bounce":
        inner: dict[str, Any] = {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": email,
                        "status": "5.1.1",
                        "action": "failed",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": iso(when),
                "feedbackId": feedback,
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            },
            "mail": mail,
        }
    else:
        inner = {
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": email}],
                "complaintFeedbackType": "abuse",
                "timestamp": iso(when),
                "feedbackId": feedback,
            },
            "mail": mail,
        }
    return sns_signed(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": json.dumps(inner),
            "Timestamp": iso(when),
        }
    )


def subscription_confirmation(when: dt.datetime, topic: str = TOPIC_ARN) -> dict[str, Any]:
    token = uuid.uuid4().hex * 2
    return sns_signed(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={topic}&Token={token}",
            "Timestamp": iso(when),
        }
    )


# --- API and rows --------------------------------------------------------------------------


async def configure(
    client: httpx.AsyncClient, account: dict[str, Any], platform: str, secret: str
) -> None:
    response = await client.put(
        f"/v1/integrations/{platform}", json={"secret": secret}, headers=auth(account)
    )
    assert response.status_code == 200, response.text


async def post(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    provider: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        f"/v1/webhooks/{account['id']}/{provider}",
        content=raw,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass(frozen=True)
class Written:
    outcomes: int
    suppressions: int
    notifications: int
    stopped: int


async def written(db: Database) -> Written:
    return Written(
        outcomes=await count(db, MailOutcome),
        suppressions=await count(db, Suppression),
        notifications=await count(db, IlnDelivery),
        stopped=await count(db, Enrollment, state="stopped"),
    )


async def message_rows(db: Database) -> list[Message]:
    async with db.session() as s:
        return list((await s.execute(select(Message).order_by(Message.created_at))).scalars())


async def suppressions(db: Database) -> list[Suppression]:
    async with db.session() as s:
        return list((await s.execute(select(Suppression).order_by(Suppression.id))).scalars())


def later(clock: ManualClock, minutes: int = 5) -> dt.datetime:
    return clock.now() + dt.timedelta(minutes=minutes)
