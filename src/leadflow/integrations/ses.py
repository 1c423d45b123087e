"""Amazon SES bounce and complaint notifications, delivered through an SNS topic.

An SNS message is signed by AWS with the key of the certificate at its ``SigningCertURL``
(RSA, SHA1 for ``SignatureVersion`` 1, SHA256 for 2). The certificate is fetched only from
``https://sns.<region>.amazonaws.com/…pem`` and kept in memory. Anyone can sign with their
own topic, so the message's ``TopicArn`` must also be the one the merchant configured (the
integration secret). A ``SubscriptionConfirmation`` is confirmed by visiting its
``SubscribeURL`` (same host rule) once its signature checks out."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from leadflow.ingest.errors import InvalidSignature, MalformedBody
from leadflow.ingest.verify import parse_json
from leadflow.integrations.esp import Reports, email_of, external_id_of, parse_time, text_of
from leadflow.lifecycle.bounces import BounceKind, Report

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
MAX_CERTIFICATES = 64

# GET an https URL on an SNS host and return the body (raising on any failure).
Fetch = Callable[[str], Awaitable[bytes]]


def sns_url(url: Any) -> str | None:
    """The URL if it is https on an SNS host (the only place certificates come from)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        return None
    if not SNS_HOST.fullmatch(parts.hostname or ""):
        return None
    return url


class SnsClient:
    """Fetches signing certificates (cached) and visits subscription URLs. Tests give it
    their own ``fetch``; the default one uses httpx with a short timeout."""

    def __init__(self, fetch: Fetch | None = None) -> None:
        self._fetch = fetch or _https_get
        self._certificates: dict[str, rsa.RSAPublicKey] = {}

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        key = self._certificates.get(url)
        if key is None:
            pem = await self._fetch(url)
            cert = x509.load_pem_x509_certificate(pem)
            found = cert.public_key()
            if not isinstance(found, rsa.RSAPublicKey):
                raise ValueError("the SNS signing certificate is not an RSA certificate")
            if len(self._certificates) >= MAX_CERTIFICATES:
                self._certificates.clear()
            key = self._certificates[url] = found
        return key

    async def visit(self, url: str) -> None:
        await self._fetch(url)


async def _https_get(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


def string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    names = SIGNED_FIELDS[kind] if isinstance(kind, str) and kind in SIGNED_FIELDS else ()
    lines = []
    for name in names:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


async def verify_sns(message: dict[str, Any], topic_arn: str, client: SnsClient) -> None:
    refused = InvalidSignature("The SNS message signature does not verify (Amazon SES).")
    if message.get("Type") not in SIGNED_FIELDS:
        raise refused
    if not all(isinstance(message.get(n), str) for n in ("Signature", "TopicArn", "MessageId")):
        raise refused
    version = message.get("SignatureVersion")
    digest: hashes.HashAlgorithm
    if version == "1":
        digest = hashes.SHA1()  # noqa: S303 - SNS signature version 1 is SHA1withRSA
    elif version == "2":
        digest = hashes.SHA256()
    else:
        raise refused
    url = sns_url(message.get("SigningCertURL"))
    if url is None or not urlsplit(url).path.endswith(".pem"):
        raise InvalidSignature("SigningCertURL must be an https .pem URL on an SNS host.")
    try:
        key = await client.public_key(url)
        signature = base64.b64decode(str(message["Signature"]), validate=True)
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), digest)
    except (BadSignature, ValueError, binascii.Error, httpx.HTTPError):
        raise refused from None
    if message["TopicArn"] != topic_arn:
        raise InvalidSignature("The SNS topic is not the one configured for this account.")


def _recipients(items: Any) -> list[dict[str, Any]]:
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def _message_id_header(mail: Any) -> str | None:
    if not isinstance(mail, dict):
        return None
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and text_of(common.get("messageId")):
        return text_of(common.get("messageId"))
    for header in _recipients(mail.get("headers")):
        if str(header.get("name", "")).lower() == "message-id":
            return text_of(header.get("value"))
    return None


def read_ses_notification(sns: dict[str, Any]) -> Reports:
    """An SES notification (``notificationType``) or event (``eventType``) in an SNS
    ``Message``: one report per bounced or complaining recipient."""
    try:
        data = json.loads(str(sns.get("Message")))
    except (json.JSONDecodeError, RecursionError):
        raise MalformedBody("The SNS Message is not JSON.", message="malformed Message") from None
    out = Reports()
    if not isinstance(data, dict):
        out.ignored = 1
        return out
    kind_name = data.get("notificationType") or data.get("eventType")
    mail = data.get("mail")
    header = _message_id_header(mail)
    if kind_name == "Bounce" and isinstance(data.get("bounce"), dict):
        detail = data["bounce"]
        kind = BounceKind.HARD if detail.get("bounceType") == "Permanent" else BounceKind.SOFT
        recipients = _recipients(detail.get("bouncedRecipients"))
    elif kind_name == "Complaint" and isinstance(data.get("complaint"), dict):
        detail = data["complaint"]
        kind = BounceKind.COMPLAINT
        recipients = _recipients(detail.get("complainedRecipients"))
    else:
        out.ignored = 1
        return out
    feedback = external_id_of(detail.get("feedbackId")) or external_id_of(sns.get("MessageId"))
    occurred_at = parse_time(detail.get("timestamp")) or parse_time(sns.get("Timestamp"))
    if feedback is None or occurred_at is None or not recipients:
        raise MalformedBody(
            "An SES notification needs feedbackId, timestamp and recipients.",
            message="malformed SES notification",
        )
    for recipient in recipients:
        email = email_of(recipient.get("emailAddress"))
        if email is None:
            continue
        diagnostic = text_of(recipient.get("diagnosticCode")) or text_of(
            detail.get("complaintFeedbackType") or detail.get("bounceSubType")
        )
        out.reports.append(
            Report(
                provider="ses",
                external_id=f"{feedback}/{email}"[:255],
                kind=kind,
                email=email,
                occurred_at=occurred_at,
                message_id_header=header,
                diagnostic=diagnostic,
            )
        )
    return out


async def read_ses(body: bytes, topic_arn: str, client: SnsClient) -> Reports:
    message = parse_json(body)
    if not isinstance(message, dict):
        raise InvalidSignature("Not an SNS message (Amazon SES).")
    await verify_sns(message, topic_arn, client)
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = sns_url(message.get("SubscribeURL"))
        if url is None:
            raise MalformedBody("SubscribeURL is not an SNS URL.", message="bad SubscribeURL")
        await client.visit(url)
        return Reports(subscription_confirmed=True)
    if kind == "UnsubscribeConfirmation":
        return Reports(ignored=1)
    return read_ses_notification(message)
