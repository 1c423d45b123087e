"""Reading and authenticating inbound webhook requests, before any parsing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import Request

from leadflow.ingest.errors import (
    InvalidSignature,
    MalformedJson,
    PayloadTooLarge,
    TimestampOutOfTolerance,
)
from leadflow.kit.errors import FieldProblem, field_error, validation_problem
from leadflow.kit.signing import signature_matches


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past ``limit`` bytes."""
    too_large = PayloadTooLarge(f"The body exceeds the {limit}-byte limit.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# The longest webhook-id that can be stored (events.external_id).
MAX_MESSAGE_ID = 255


def _unauthorized(detail: str) -> InvalidSignature:
    return InvalidSignature(detail)


def verify_standard_webhook(
    *,
    secrets: list[str],
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> None:
    if not msg_id or not timestamp or not signature or "\x00" in msg_id:
        raise _unauthorized(
            "Missing webhook-id, webhook-timestamp or webhook-signature header (Standard Webhooks)."
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise _unauthorized("webhook-timestamp must be integer seconds since the epoch.") from None
    # Integers throughout: a timestamp of hundreds of digits is far off, not a float overflow.
    if abs(int(now.timestamp()) - sent_at) > tolerance.total_seconds():
        raise TimestampOutOfTolerance(
            f"webhook-timestamp is more than {int(tolerance.total_seconds())} s away from now; "
            "replays are refused."
        )
    if not signature_matches(secrets, msg_id, sent_at, body, signature):
        raise _unauthorized("No signature in webhook-signature matches the account's secret.")
    if len(msg_id) > MAX_MESSAGE_ID:  # it is stored as the event's idempotency key
        raise field_error("webhook-id", f"at most {MAX_MESSAGE_ID} characters")


# Deeper JSON is refused: it would exhaust the recursion limit when parsed or stored.
MAX_JSON_DEPTH = 64


def parse_json(body: bytes) -> Any:
    """The body as JSON text in UTF-8 (RFC 8259 §8.1), holding only storable text."""
    try:
        # json.loads(bytes) would also accept UTF-16/32, which the raw body can't be stored as.
        data = json.loads(body.decode("utf-8").removeprefix("\ufeff"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedJson(
            f"The body is not valid JSON: {exc}", message="malformed JSON"
        ) from None
    if not _plainly_storable(data):
        _check_storable(data)  # names each offending field
    return data


def _plainly_storable(data: Any) -> bool:
    """The common case, checked without building field paths: every string storable and the
    nesting within bounds."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _storable(value):
                return False
        elif isinstance(value, dict):
            if depth >= MAX_JSON_DEPTH:
                return False
            for key, item in value.items():
                if not _storable(key):
                    return False
                if not isinstance(item, str | int | float | bool | None):
                    stack.append((item, depth + 1))
                elif isinstance(item, str) and not _storable(item):
                    return False
        elif isinstance(value, list):
            if depth >= MAX_JSON_DEPTH:
                return False
            stack.extend((item, depth + 1) for item in value)
    return True


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate, from a "\ud800" escape
        return False
    return True


def _check_storable(data: Any) -> None:
    """Refuse what JSON allows but PostgreSQL can't store (U+0000, unpaired surrogates) and
    excessive nesting, as a client error naming the field instead of a failure to store."""
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not _storable(value):
                problems.append(FieldProblem(field=path or "body", message=_UNSTORABLE))
        elif isinstance(value, list | dict):
            if depth >= MAX_JSON_DEPTH:
                problems.append(
                    FieldProblem(
                        field=path or "body", message=f"nested over {MAX_JSON_DEPTH} levels deep"
                    )
                )
                break
            if isinstance(value, list):
                stack += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
                continue
            for key, item in value.items():
                if not _storable(key):
                    problems.append(FieldProblem(field=path or "body", message=_UNSTORABLE_KEY))
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
    if problems:
        problems.reverse()  # document order, as far as a depth-first walk allows
        raise validation_problem(problems)


_UNSTORABLE = "must not contain U+0000 or unpaired surrogates"
_UNSTORABLE_KEY = "object keys must not contain U+0000 or unpaired surrogates"
