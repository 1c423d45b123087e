"""The real thing: `leadflow serve` in a subprocess, an account from the CLI, a signed event."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.events import event_body, signed_headers

LEADFLOW = [sys.executable, "-m", "leadflow.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}",
        "LEADFLOW_PORT": str(port),
        "LEADFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.pop("LEADFLOW_SMTP_URL", None)
    proc = subprocess.Popen(
        [*LEADFLOW, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"leadflow serve did not become ready:\n{output}")
            time.sleep(0.1)
        yield base, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_cli_account_signed_event_lead(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    created = subprocess.run(
        [*LEADFLOW, "accounts", "create", "E2E Shop", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    account = json.loads(created.stdout)
    assert set(account) == {"id", "name", "api_key", "webhook_secret"}

    body = json.dumps(event_body()).encode()
    response = httpx.post(
        f"{base}/v1/webhooks/{account['id']}/events",
        content=body,
        headers=signed_headers(account["webhook_secret"], body),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]

    headers = {"Authorization": f"Bearer {account['api_key']}"}
    lead = httpx.get(f"{base}/v1/leads/{lead_id}", headers=headers, timeout=10)
    assert lead.status_code == 200, lead.text
    assert lead.json()["customer"]["email"] == "jane@example.com"
    assert lead.json()["status"] == "open"
    listed = httpx.get(f"{base}/v1/leads", headers=headers, timeout=10).json()
    assert [item["id"] for item in listed["items"]] == [lead_id]
