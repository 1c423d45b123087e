"""Bounces and complaints that come back by mail: delivery status notifications (RFC 3464,
``multipart/report; report-type=delivery-status``) and abuse reports (ARF, RFC 5965,
``report-type=feedback-report``), read as reports about one of our follow-ups.

The follow-up is found by its ``Message-ID`` (``<msg_…@domain>``, the message id leadflow
gave it) in the returned headers (``text/rfc822-headers`` or ``message/rfc822``), which names
its account too; a report that names none of ours is dropped."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import re
from dataclasses import dataclass
from email.message import Message as MimeMessage
from email.policy import compat32

from leadflow.lifecycle.bounces import BounceKind, Report

OUR_ID = re.compile(r"<?(msg_[A-Za-z0-9_-]{1,36})@[^>\s]+>?")
STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True)
class Returned:
    """A returned report and the follow-up (our message id) it is about."""

    message_id: str
    report: Report


def _fields(part: MimeMessage) -> list[MimeMessage]:
    """The header blocks of a ``message/delivery-status`` or ``message/feedback-report``
    part (one per recipient in a DSN, after the per-message block)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses delivery-status into blocks
        return [p for p in payload if isinstance(p, MimeMessage)]
    text = payload if isinstance(payload, str) else ""
    return [
        email.message_from_string(b.strip() + "\n\n", policy=compat32)
        for b in re.split(r"\r?\n\r?\n", text)
        if b.strip()
    ]


def _returned_headers(msg: MimeMessage) -> MimeMessage | None:
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], MimeMessage):
                return inner[0]
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            return email.message_from_bytes(bytes(raw), policy=compat32)
    return None


def _our_message_id(headers: MimeMessage | None) -> tuple[str, str] | None:
    if headers is None:
        return None
    value = str(headers.get("Message-ID") or "")
    found = OUR_ID.search(value)
    return (found.group(1), value.strip()) if found else None


def _address(value: object) -> str | None:
    text = str(value or "")
    _, _, address = text.partition(";")  # "rfc822; jane@example.com"
    address = address.strip().strip("<>").lower()
    return address if "@" in address and len(address) <= 320 else None


def _external_id(msg: MimeMessage, raw: bytes, email_: str) -> str:
    own = str(msg.get("Message-ID") or "").strip()
    base = own if own else hashlib.sha256(raw).hexdigest()
    return f"{base}/{email_}"[:255]


def read_returned(raw: bytes, now: dt.datetime) -> list[Returned]:
    """The reports a returned message holds; empty when it is not a DSN or ARF report about
    one of our follow-ups (an autoreply, spam)."""
    msg = email.message_from_bytes(raw, policy=compat32)
    if msg.get_content_type() != "multipart/report":
        return []
    report_type = str(msg.get_param("report-type") or "").lower()
    ours = _our_message_id(_returned_headers(msg))
    if ours is None:
        return []
    message_id, header = ours
    returned = _returned_headers(msg)
    returned_to = _address("rfc822;" + str(returned.get("To") or "")) if returned else None
    occurred_at = now
    if msg.get("Date"):
        try:
            parsed = email.utils.parsedate_to_datetime(str(msg["Date"]))
            occurred_at = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError):
            pass
    out: list[Returned] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if report_type == "delivery-status" and kind == "message/delivery-status":
            for block in _fields(part)[1:] or _fields(part):
                action = str(block.get("Action") or "").strip().lower()
                status = STATUS.search(str(block.get("Status") or ""))
                address = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
                if action != "failed" or address is None:
                    continue  # delayed, delivered, relayed, expanded: not a bounce
                hard = status is None or status.group(1) == "5"
                out.append(
                    Returned(
                        message_id,
                        Report(
                            provider="smtp",
                            external_id=_external_id(msg, raw, address),
                            kind=BounceKind.HARD if hard else BounceKind.SOFT,
                            email=address,
                            occurred_at=occurred_at.astimezone(dt.UTC),
                            message_id_header=header,
                            diagnostic=str(block.get("Diagnostic-Code") or "")[:2000] or None,
                        ),
                    )
                )
        elif report_type == "feedback-report" and kind == "message/feedback-report":
            for block in _fields(part)[:1]:
                if str(block.get("Feedback-Type") or "").strip().lower() not in ("abuse", "fraud"):
                    continue
                rcpt = str(block.get("Original-Rcpt-To") or "").split(";")[-1]
                address = _address("rfc822;" + rcpt) or returned_to
                if address is None:
                    continue
                out.append(
                    Returned(
                        message_id,
                        Report(
                            provider="smtp",
                            external_id=_external_id(msg, raw, address),
                            kind=BounceKind.COMPLAINT,
                            email=address,
                            occurred_at=occurred_at.astimezone(dt.UTC),
                            message_id_header=header,
                            diagnostic=str(block.get("User-Agent") or "")[:2000] or None,
                        ),
                    )
                )
    return out
