"""Real ``leadflow worker`` processes on one PostgreSQL database, an SMTP sink that knows which
sessions are inside the DATA phase, and reading the outcome back from the database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from sqlalchemy import func, select, text

from leadflow.kit.db import Database
from leadflow.models import Base
from leadflow.models.enrollments import Enrollment, Message
from tests.fixtures.mail import SmtpSink

WORKER = [sys.executable, "-m", "leadflow", "worker"]


def postgres_only(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("worker processes sharing one database: PostgreSQL only (SQLite: one writer)")


async def empty(db: Database) -> None:
    """Every table emptied, children first (the ``db`` fixture does the same per test)."""
    async with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608


def worker_env(database_url: str, **settings: str | float | int) -> dict[str, str]:
    """The environment of a worker process: ``settings`` are ``LEADFLOW_*`` variables without
    the prefix (``dispatch_lease_seconds=5``)."""
    env = {**os.environ, "LEADFLOW_DATABASE_URL": database_url}
    env.update({f"LEADFLOW_{key.upper()}": str(value) for key, value in settings.items()})
    return env


class Workers:
    """Worker processes started, killed and stopped by the test; each writes to its own log."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: list[asyncio.subprocess.Process] = []
        self.started = 0
        self.log_of: dict[int, Path] = {}

    async def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.started += 1
            path = self.log_dir / f"worker-{self.started:03d}.log"
            with path.open("wb") as log:
                # A file, not a pipe: a pipe nobody reads blocks the worker once it is full.
                proc = await asyncio.create_subprocess_exec(
                    *WORKER, env=self.env, stdout=log, stderr=log
                )
            self.running.append(proc)
            self.log_of[proc.pid] = path

    async def ready(
        self, wait: bool = False, limit: float = 60
    ) -> list[asyncio.subprocess.Process]:
        """The running workers that have started their jobs (and handle signals); with
        ``wait``, waits until there is at least one."""
        deadline = time.monotonic() + limit
        while True:
            found = [
                proc
                for proc in self.running
                if "worker started" in self.log_of[proc.pid].read_text(errors="replace")
            ]
            if found or not wait:
                return found
            assert time.monotonic() < deadline, f"no worker started:\n{self.logs()}"
            await asyncio.sleep(0.05)

    async def wait_ready(self, limit: float = 60) -> None:
        """Until every running worker has started its jobs."""
        deadline = time.monotonic() + limit
        while len(await self.ready()) < len(self.running):
            for proc in self.running:
                assert proc.returncode is None, f"a worker exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"workers never started:\n{self.logs()}"
            await asyncio.sleep(0.05)

    async def kill(self, proc: asyncio.subprocess.Process) -> None:
        """SIGKILL: no handler runs, sockets are closed by the kernel mid-whatever."""
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        self.running.remove(proc)

    async def terminate(
        self, procs: list[asyncio.subprocess.Process] | None = None, limit: float = 30
    ) -> list[int | None]:
        """SIGTERM to ``procs`` (all running ones by default) at once; their exit codes."""
        procs = list(self.running if procs is None else procs)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in procs:
            try:
                codes.append(await asyncio.wait_for(proc.wait(), limit))
            except TimeoutError:
                codes.append(None)  # still running: close() kills it
            else:
                self.running.remove(proc)
        return codes

    async def close(self) -> None:
        for proc in list(self.running):
            await self.kill(proc)

    def logs(self) -> str:
        """The last lines of every log, for a failure message."""
        tails = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            lines = path.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(tails)


class _DataTrackingSMTP(SMTP):
    """aiosmtpd's server, noting which client ports are between the DATA command and the
    answer to it: the window in which a sender cannot know whether the message was taken."""

    async def smtp_DATA(self, arg: str) -> None:
        sink: ChaosSink = self.event_handler.sink
        assert self.session is not None
        port = int(self.session.peer[1])  # type: ignore[index]
        assert self.envelope is not None
        with sink.data_lock:
            sink.in_data.add(port)
            sink.data_began.update(self.envelope.rcpt_tos)
        try:
            await super().smtp_DATA(arg)
        finally:
            with sink.data_lock:
                sink.in_data.discard(port)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _DataTrackingSMTP(self.handler, **self.SMTP_kwargs)


class ChaosSink(SmtpSink):
    """The tests' SMTP sink (a thread of this process), and which sessions are inside DATA."""

    def __init__(self) -> None:
        super().__init__()
        self.handler.sink = self  # type: ignore[attr-defined]
        self.in_data: set[int] = set()
        self.data_began: Counter[str] = Counter()  # recipient: DATA phases begun for it
        self.data_lock = threading.Lock()

    def start(self) -> None:
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def inside_data(self, ports: set[int]) -> int:
        """How many of the client ``ports`` are inside the DATA phase now."""
        with self.data_lock:
            return len(self.in_data & ports)


def client_ports(pid: int, server_port: int) -> set[int] | None:
    """The local ports of ``pid``'s TCP connections to 127.0.0.1:``server_port`` (Linux
    /proc), or None where that cannot be read."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports = set()
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
        return ports
    except OSError:
        return None


@dataclass(frozen=True)
class Row:
    to_email: str
    step: int
    status: str
    message_id_header: str


async def message_rows(db: Database) -> list[Row]:
    async with db.session() as session:
        found = await session.execute(
            select(Message.to_email, Message.step, Message.status, Message.message_id_header)
        )
        return [Row(*row) for row in found]


async def handed_over(db: Database) -> dict[tuple[str, int], str]:
    """Follow-ups whose DATA phase may have begun and that are not settled as sent: the
    status of each message with its DATA mark that is ``sending`` or ``unknown``."""
    async with db.session() as session:
        found = await session.execute(
            select(Message.to_email, Message.step, Message.status).where(
                Message.data_started_at.is_not(None),
                Message.status.in_(("sending", "unknown")),
            )
        )
        return {(to, step): status for to, step, status in found}


async def statuses(db: Database) -> Counter[str]:
    async with db.session() as session:
        found = await session.execute(select(Message.status, func.count()).group_by(Message.status))
        return Counter({status: n for status, n in found})


async def enrollment_states(db: Database) -> Counter[str]:
    async with db.session() as session:
        found = await session.execute(
            select(Enrollment.state, func.count()).group_by(Enrollment.state)
        )
        return Counter({state: n for state, n in found})


async def held_claims(db: Database) -> int:
    async with db.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.lease_token.is_not(None))
        )
        return int(found or 0)


async def wait_until(condition: Any, limit: float, interval: float = 0.25) -> float | None:
    """Await ``condition()`` until it is true: the seconds it took, or None after ``limit``."""
    start = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - start
        if time.monotonic() - start >= limit:
            return None
        await asyncio.sleep(interval)


def received(sink: SmtpSink) -> Counter[tuple[str, str]]:
    """(recipient, subject) of every message the sink accepted, with how often."""
    return Counter((str(m["To"]), str(m["Subject"])) for m in sink.messages)
