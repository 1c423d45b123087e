"""A database that goes away answers 503 with Retry-After, and leadflow recovers by itself.

The outage is made by a TCP proxy between leadflow and PostgreSQL that the test cuts and
restores; the shared PostgreSQL server itself is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import upgrade
from tests.support.api import ADMIN_TOKEN, BASE_URL, app_client, assert_problem, auth, make_account
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url
from tests.support.events import event_body, post_event


class Proxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; ``cut()`` drops every connection and refuses
    new ones until ``restore()``."""

    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
async def outage_setup() -> AsyncIterator[tuple[Proxy, Database, str]]:
    await pg_or_skip()
    name = await create_pg_database()
    direct = Database(pg_url(name))
    await upgrade(direct.engine)
    await direct.dispose()
    proxy = Proxy()
    await proxy.start()
    url = pg_url(name).replace(":5432/", f":{proxy.port}/")
    db = Database(url, pool_size=2)
    try:
        yield proxy, db, url
    finally:
        await db.dispose()
        with contextlib.suppress(Exception):
            await proxy.cut()
        await drop_pg_database(name)


async def test_an_outage_answers_503_and_recovers(outage_setup):
    proxy, db, url = outage_setup
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, base_url=BASE_URL)
    clock = ManualClock()
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as client:
        account = await make_account(client)
        assert (await client.get("/v1/settings", headers=auth(account))).status_code == 200

        await proxy.cut()
        for _ in range(2):  # the same keep-alive client, twice: the connection stays usable
            response = await client.get("/v1/settings", headers=auth(account))
            assert_problem(response, 503)
            assert response.json()["code"] == "database_unavailable"
            assert int(response.headers["Retry-After"]) > 0
        webhook = await post_event(client, account, event_body(), clock=clock)
        assert_problem(webhook, 503)  # platforms retry a 503
        assert (await client.get("/readyz")).status_code == 503

        await proxy.restore()
        answers = [
            (await client.get("/v1/settings", headers=auth(account))).status_code for _ in range(3)
        ]
        assert answers[-1] == 200, answers
        assert (await post_event(client, account, event_body(), clock=clock)).status_code == 200
