"""Cursor pagination: ``{"items": [...], "next_cursor": ...}`` everywhere."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import DateTime, Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import UTCDateTime
from leadflow.kit.errors import field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """``Page[CampaignOut]`` is the schema ``CampaignPage``: a name client generators keep."""
        (item,) = params
        return f"{getattr(item, '__name__', 'Item').removesuffix('Out')}Page"


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


def _from_cursor(column: Any, value: Any) -> Any:
    """A cursor value back as the column's type; anything odd is a 422 naming ``cursor``."""
    if isinstance(column.type, UTCDateTime | DateTime):
        try:
            parsed = dt.datetime.fromisoformat(str(value))
            if parsed.tzinfo is None:
                raise ValueError("naive timestamp")
            return parsed.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            raise field_error("cursor", "malformed cursor") from None
    if not isinstance(value, str) or "\x00" in value:
        raise field_error("cursor", "malformed cursor")
    return value


def _to_cursor(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    columns: Sequence[Any],
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by ``columns`` (the last one unique, e.g. the id), and the
    cursor for the next page: rows after the cursor's key, never skipped or repeated."""
    if cursor:
        raw = decode_cursor(cursor, len(columns))
        values = [
            literal(_from_cursor(c, v), type_=c.type) for c, v in zip(columns, raw, strict=True)
        ]
        key = tuple_(*columns)
        stmt = stmt.where(key < tuple_(*values) if newest_first else key > tuple_(*values))
    order = [c.desc() if newest_first else c.asc() for c in columns]
    rows = list((await session.execute(stmt.order_by(*order).limit(limit + 1))).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([_to_cursor(getattr(rows[-1], c.key)) for c in columns])
