"""Cursor pagination: ``{"items": [...], "next_cursor": ...}`` everywhere."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from leadflow.kit.errors import field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except ValueError:
        raise field_error("cursor", "malformed cursor") from None
    if not isinstance(values, list) or len(values) != size:
        raise field_error("cursor", "malformed cursor")
    return values
