"""Progress of long commands: plain lines when stderr is not a terminal (a log, a pipe), a
``tqdm`` bar when it is one; ``leadflow secret-key rotate`` shows it."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

import httpx

from leadflow.kit.db import Database
from leadflow.kit.progress import Progress
from leadflow.kit.secrets import generate_key
from tests.cli.helpers import LEADFLOW, cli_env, leadflow
from tests.support.api import TEST_SECRET_KEY, make_account

ACCOUNTS = 3


def test_plain_lines_count_up_to_the_total() -> None:
    out = io.StringIO()
    with Progress("re-encrypted", 12, stream=out, every=0) as progress:
        for done in (5, 10, 12):
            progress.update(done)
    assert out.getvalue() == "re-encrypted 5/12\nre-encrypted 10/12\nre-encrypted 12/12\n"


def test_plain_lines_are_spaced_out_and_the_last_one_always_printed() -> None:
    out = io.StringIO()
    with Progress("rescored", 1000, unit="leads", stream=out, every=3600) as progress:
        for _ in range(1000):
            progress.advance()
    # The first hour has not passed: only the closing line.
    assert out.getvalue() == "rescored 1000/1000 leads\n"


def test_an_unknown_or_passed_total() -> None:
    out = io.StringIO()
    with Progress("examined", stream=out, every=0) as progress:
        progress.update(3)
    with Progress("examined", 2, stream=out, every=0) as progress:
        progress.update(5)  # leads captured meanwhile
    assert out.getvalue() == "examined 3\nexamined 5/5\n"


def test_a_stream_that_is_not_a_terminal_gets_no_bar() -> None:
    out = io.StringIO()
    with Progress("examined", 4, stream=out, every=0) as progress:
        progress.update(4)
    assert "\r" not in out.getvalue()
    assert "%" not in out.getvalue()


def test_a_bar_when_asked() -> None:
    out = io.StringIO()
    with Progress("examined", 4, unit="leads", stream=out, bar=True) as progress:
        progress.update(2)
        progress.update(4)
    assert "examined: 100%" in out.getvalue()
    assert "4/4" in out.getvalue()


async def accounts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [await make_account(client, f"Shop {n}") for n in range(ACCOUNTS)]


async def test_key_rotation_prints_plain_progress_lines_into_a_pipe(
    db: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await accounts(client)
    new_key = generate_key()
    env = cli_env(tmp_path, database_url=db.url, secret_key=f"{new_key},{TEST_SECRET_KEY}")
    ran = await leadflow("secret-key", "rotate", "--batch-size", "1", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    assert f"re-encrypting accounts {ACCOUNTS}/{ACCOUNTS} rows\n" in ran.stderr
    assert "re-encrypting iln_endpoints 0/0 rows\n" in ran.stderr
    assert "\r" not in ran.stderr
    assert f"accounts: {ACCOUNTS} of {ACCOUNTS} rows re-encrypted" in ran.stdout


def run_in_terminal(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    """``leadflow args…`` with its stderr on a pseudo-terminal; (code, stdout, terminal)."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*LEADFLOW, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=terminal
        )
    finally:
        os.close(terminal)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    return proc.wait(timeout=60), out, seen.decode(errors="replace")


async def test_key_rotation_shows_a_bar_on_a_terminal(
    db: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await accounts(client)
    env = cli_env(tmp_path, database_url=db.url, secret_key=f"{generate_key()},{TEST_SECRET_KEY}")
    code, out, terminal = await asyncio.to_thread(
        run_in_terminal, env, tmp_path, "secret-key", "rotate", "--batch-size", "1"
    )
    assert code == 0, out + terminal
    assert "re-encrypting accounts: 100%" in terminal, repr(terminal)
    assert f"{ACCOUNTS}/{ACCOUNTS}" in terminal
    assert "\r" in terminal  # the bar redraws in place
    assert f"re-encrypting accounts {ACCOUNTS}/{ACCOUNTS} rows\n" not in terminal
    assert f"accounts: {ACCOUNTS} of {ACCOUNTS} rows re-encrypted" in out
