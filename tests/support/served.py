"""``leadflow api`` as a real process on a loopback port, on its own PostgreSQL database.

For tests that must go through real HTTP end to end (a socket, uvicorn's parser, keep-alive),
not through the in-process ASGI transport the ``client`` fixture uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.api import ADMIN_TOKEN
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url
from tests.support.servers import free_port

T = TypeVar("T")
LEADFLOW = [sys.executable, "-m", "leadflow"]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a loop of its own, in another thread, so that the
    session's event loop (pytest-asyncio's) is left alone."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass(frozen=True)
class Served:
    base_url: str
    database_url: str
    env: dict[str, str]
    log: Path

    def create_account(self, name: str = "Acme Shop") -> dict[str, Any]:
        response = httpx.post(
            f"{self.base_url}/v1/admin/accounts",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        return account


@contextmanager
def serve_api(
    log_dir: Path, *, database_port: int | None = None, **settings: str
) -> Iterator[Served]:
    """A migrated PostgreSQL database and ``leadflow api`` serving it on 127.0.0.1; both are
    gone afterwards. ``settings`` are extra ``LEADFLOW_*`` variables (without the prefix).
    With ``database_port``, the server reaches PostgreSQL through that local port (a proxy
    the test controls); it is migrated directly."""
    run_async(pg_or_skip())
    name = run_async(create_pg_database())
    url = pg_url(name)
    served_url = url if database_port is None else url.replace(":5432/", f":{database_port}/")
    port = free_port()
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": served_url,
        "LEADFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "LEADFLOW_HOST": "127.0.0.1",
        "LEADFLOW_PORT": str(port),
        "LEADFLOW_BASE_URL": f"http://127.0.0.1:{port}",
        **{f"LEADFLOW_{key.upper()}": value for key, value in settings.items()},
    }
    env.pop("LEADFLOW_SMTP_URL", None)
    log = log_dir / f"leadflow-api-{port}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        migrate_env = {**env, "LEADFLOW_DATABASE_URL": url}
        subprocess.run([*LEADFLOW, "migrate"], env=migrate_env, check=True, capture_output=True)
        with log.open("wb") as out:
            # A file, not a pipe: a pipe nobody reads would block the server once it is full.
            proc = subprocess.Popen([*LEADFLOW, "api"], env=env, stdout=out, stderr=out)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"leadflow api exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"leadflow api never ready:\n{log.read_text()}"
            time.sleep(0.1)
        yield Served(base_url=base, database_url=served_url, env=env, log=log)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        run_async(drop_pg_database(name))
