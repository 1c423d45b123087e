"""Reading and authenticating inbound webhook requests, before any parsing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import Request

from leadflow.kit.errors import AppError, FieldProblem
from leadflow.kit.signing import signature_matches


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past ``limit`` bytes."""
    too_large = AppError(413, "payload_too_large", f"The body exceeds the {limit}-byte limit.")
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


def _unauthorized(detail: str) -> AppError:
    return AppError(401, "invalid_signature", detail)


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
    if not msg_id or not timestamp or not signature:
        raise _unauthorized(
            "Missing webhook-id, webhook-timestamp or webhook-signature header (Standard Webhooks)."
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise _unauthorized("webhook-timestamp must be integer seconds since the epoch.") from None
    if abs(now.timestamp() - sent_at) > tolerance.total_seconds():
        raise AppError(
            401,
            "timestamp_out_of_tolerance",
            f"webhook-timestamp is more than {int(tolerance.total_seconds())} s away from now; "
            "replays are refused.",
        )
    if not signature_matches(secrets, msg_id, sent_at, body, signature):
        raise _unauthorized("No signature in webhook-signature matches the account's secret.")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AppError(
            422,
            "malformed_json",
            f"The body is not valid JSON: {exc}",
            errors=[FieldProblem(field="body", message="malformed JSON")],
        ) from None
