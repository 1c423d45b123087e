"""The floor for ingest benchmarks: a bare FastAPI endpoint that inserts the body into one table
with asyncpg. No verification, no parsing beyond what FastAPI does: what the stack costs.

    BARE_DSN=postgresql://... uvicorn --app-dir bench bare_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DSN = os.environ.get("BARE_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DSN, min_size=4, max_size=10)
    async with app.state.pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bare_events (id bigserial PRIMARY KEY, body text)"
        )
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/webhooks/{account_id}/events")
async def receive(account_id: str, request: Request) -> JSONResponse:
    body = (await request.body()).decode()
    async with request.app.state.pool.acquire() as conn:
        event_id = await conn.fetchval(
            "INSERT INTO bare_events (body) VALUES ($1) RETURNING id", body
        )
    return JSONResponse({"event_id": event_id})
