"""``leadflow api`` as a real process on a loopback port, on its own PostgreSQL database;
or several ``leadflow api`` and ``leadflow worker`` processes sharing one (``serve_cluster``).

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
from dataclasses import dataclass, field
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
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

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


READY_SECONDS = 30
CLUSTER_READY_SECONDS = 90


async def _migrate(url: str) -> None:
    from leadflow.kit.db import Database
    from leadflow.kit.migrate import upgrade

    db = Database(url, pool_size=1)
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()


def _api_env(database_url: str, port: int, settings: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "LEADFLOW_HOST": "127.0.0.1",
        "LEADFLOW_PORT": str(port),
        "LEADFLOW_BASE_URL": f"http://127.0.0.1:{port}",
        **{f"LEADFLOW_{key.upper()}": value for key, value in settings.items()},
    }


def _start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # A file, not a pipe: a pipe nobody reads would block the server once it is full.
        return subprocess.Popen([*LEADFLOW, command], env=env, stdout=out, stderr=out)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, deadline: float) -> None:
    while True:
        assert proc.poll() is None, f"leadflow api exited:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"leadflow api never ready:\n{log.read_text()}"
        time.sleep(0.1)


def _wait_started(proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    """Until the worker has started its jobs (its log says so)."""
    while "worker started" not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"leadflow worker exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"leadflow worker never started:\n{log.read_text()}"
        time.sleep(0.1)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once, then a bounded wait each (SIGKILL past it)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    env = _api_env(served_url, port, settings)
    env.pop("LEADFLOW_SMTP_URL", None)
    log = log_dir / f"leadflow-api-{port}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        migrate_env = {**env, "LEADFLOW_DATABASE_URL": url}
        subprocess.run([*LEADFLOW, "migrate"], env=migrate_env, check=True, capture_output=True)
        proc = _start("api", env, log)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, base, log, time.monotonic() + READY_SECONDS)
        yield Served(base_url=base, database_url=served_url, env=env, log=log)
    finally:
        if proc is not None:
            _stop([proc])
        run_async(drop_pg_database(name))


@dataclass
class Cluster:
    """API processes and worker processes on one PostgreSQL database."""

    apis: list[Served]
    workers: list[subprocess.Popen[bytes]]
    worker_logs: list[Path]
    database_url: str

    def assert_running(self) -> None:
        for api in self.apis:
            assert api.process is not None and api.process.poll() is None, (
                f"an API process exited:\n{self.logs()}"
            )
        for proc in self.workers:
            assert proc.poll() is None, f"a worker exited:\n{self.logs()}"

    def logs(self, lines: int = 20) -> str:
        """The last lines of every process's log, for a failure message."""
        tails = []
        for path in [*(api.log for api in self.apis), *self.worker_logs]:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(tails)


@contextmanager
def serve_cluster(
    log_dir: Path,
    *,
    apis: int = 2,
    workers: int = 3,
    worker_settings: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[Cluster]:
    """A migrated PostgreSQL database, ``apis`` ``leadflow api`` processes on their own
    loopback ports and ``workers`` ``leadflow worker`` processes, all on that database, every
    one ready (API ``/readyz`` answers 200, workers have started their jobs). ``settings``
    (``LEADFLOW_*`` without the prefix) apply to all, ``worker_settings`` to the workers
    only. Every process is stopped and the database dropped afterwards."""
    run_async(pg_or_skip())
    name = run_async(create_pg_database())
    url = pg_url(name)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        run_async(_migrate(url))  # in this process: one interpreter start less
        served: list[Served] = []
        for _ in range(apis):
            port = free_port()
            api_env = _api_env(url, port, settings)
            log = log_dir / f"leadflow-api-{port}.log"
            proc = _start("api", api_env, log)
            procs.append(proc)
            served.append(Served(f"http://127.0.0.1:{port}", url, api_env, log, process=proc))
        worker_env = {
            **_api_env(url, free_port(), settings),
            **{f"LEADFLOW_{k.upper()}": v for k, v in (worker_settings or {}).items()},
        }
        worker_procs, worker_logs = [], []
        for number in range(1, workers + 1):
            log = log_dir / f"leadflow-worker-{number}.log"
            proc = _start("worker", worker_env, log)
            procs.append(proc)
            worker_procs.append(proc)
            worker_logs.append(log)
        # Five interpreters starting at once on a small, shared machine: a generous bound.
        deadline = time.monotonic() + CLUSTER_READY_SECONDS
        for api in served:
            assert api.process is not None
            _wait_ready(api.process, api.base_url, api.log, deadline)
        for proc, log in zip(worker_procs, worker_logs, strict=True):
            _wait_started(proc, log, deadline)
        yield Cluster(served, worker_procs, worker_logs, url)
    finally:
        _stop(procs)
        run_async(drop_pg_database(name))
