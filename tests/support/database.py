"""Test databases on the PostgreSQL server, and reading rows back."""

from __future__ import annotations

import os
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from leadflow.kit.db import Database

PG_ADMIN_DSN = os.environ.get(
    "LEADFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pg_url(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{dbname}"


async def _pg_available() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    await conn.close()
    return None


async def create_pg_database() -> str:
    name = f"leadflow_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def pg_or_skip() -> None:
    problem = await _pg_available()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {problem}")
    pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN} ({problem}); PostgreSQL tests skipped")


async def count(db: Database, model: Any, **where: Any) -> int:
    """Rows of ``model`` (whose columns equal ``where``), read straight from the database."""
    async with db.session() as session:
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return int(await session.scalar(stmt) or 0)
