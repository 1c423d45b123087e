"""What the benchmarks share: a throwaway PostgreSQL database and free loopback ports."""

from __future__ import annotations

import os
import socket
import uuid

import asyncpg

ADMIN_DSN = os.environ.get("LEADFLOW_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dsn(name: str) -> str:
    """The asyncpg DSN of database ``name`` on the benchmark server."""
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


def sqlalchemy_url(name: str) -> str:
    return dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database() -> str:
    name = f"leadflow_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return name


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
