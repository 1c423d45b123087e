"""The first run and the newcomer's path, with real processes: ``leadflow serve`` on an empty
SQLite database prints a single-use setup link (a new one at each start, none once an account
exists); the link creates the account; ``leadflow events send-test`` posts a signed event to
the running server and a lead appears. The same on PostgreSQL with ``leadflow api``."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.cli.helpers import LEADFLOW, cli_env
from tests.support.served import serve_api
from tests.support.servers import free_port

SETUP_LINK = re.compile(r"(http://[\w.:\[\]]+)/dashboard/#/setup\?token=(lfl_[\w-]{40,})")
READY_SECONDS = 60


@contextmanager
def serving(env: dict[str, str], cwd: Path, log: Path) -> Iterator[str]:
    """``leadflow serve`` until the block ends; yields its log's text once it is ready."""
    with log.open("wb") as out:
        proc = subprocess.Popen([*LEADFLOW, "serve"], env=env, cwd=cwd, stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{env['LEADFLOW_PORT']}"
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert proc.poll() is None, f"leadflow serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"never ready:\n{log.read_text()}"
            time.sleep(0.1)
        yield log.read_text(errors="replace")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def send_test(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEADFLOW, "events", "send-test", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lead_id_of(stdout: str) -> str:
    match = re.search(r"^lead (lead_\w+): open$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def test_serve_on_an_empty_database_prints_a_setup_link_that_creates_the_account(
    tmp_path: Path,
) -> None:
    port = free_port()
    # No LEADFLOW_BASE_URL: the link names the address leadflow listens on.
    env = cli_env(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}",
        host="127.0.0.1",
        port=str(port),
    )
    base = f"http://127.0.0.1:{port}"
    with serving(env, tmp_path, tmp_path / "first.log") as log:
        links = SETUP_LINK.findall(log)
    assert len(links) == 1, log
    assert links[0][0] == base
    first = links[0][1]
    assert "leadflow has no account yet" in log

    with serving(env, tmp_path, tmp_path / "second.log") as log:
        ((_, second),) = SETUP_LINK.findall(log)
        assert second != first
        replaced = httpx.post(
            f"{base}/v1/setup", json={"token": first, "account_name": "My Shop"}, timeout=10
        )
        assert replaced.status_code == 401, replaced.text
        created = httpx.post(
            f"{base}/v1/setup", json={"token": second, "account_name": "My Shop"}, timeout=10
        )
        assert created.status_code == 201, created.text
        account: dict[str, Any] = created.json()
        cookie = created.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        again = httpx.post(
            f"{base}/v1/setup", json={"token": second, "account_name": "Other"}, timeout=10
        )
        assert again.status_code == 409, again.text

        # The newcomer's next step: a test event, signed with the account's secret.
        sent = send_test(env, tmp_path, "My Shop")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        lead_id = lead_id_of(sent.stdout)
        headers = {"Authorization": f"Bearer {account['api_key']}"}
        lead = httpx.get(f"{base}/v1/leads/{lead_id}", headers=headers, timeout=10).json()
        assert lead["customer"]["email"] == "jane.doe@example.com"
        assert lead["source_type"] == "abandoned_checkout"
        bought = send_test(env, tmp_path, account["account_id"], "--type", "purchase")
        assert bought.returncode == 0, bought.stdout + bought.stderr
        assert f"converted lead {lead_id}" in bought.stdout
        lead = httpx.get(f"{base}/v1/leads/{lead_id}", headers=headers, timeout=10).json()
        assert lead["status"] == "converted"
    served_log = (tmp_path / "second.log").read_text()
    # The token is printed once, for the operator; the access log never shows it.
    assert served_log.count(second) == 1, served_log

    with serving(env, tmp_path, tmp_path / "third.log") as log:
        assert SETUP_LINK.search(log) is None, log
        assert "no account yet" not in log


def test_send_test_reports_a_server_that_is_not_there(tmp_path: Path) -> None:
    env = cli_env(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}")
    created = subprocess.run(
        [*LEADFLOW, "accounts", "create", "Shop"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert created.returncode == 0
    nobody = f"http://127.0.0.1:{free_port()}"
    sent = send_test(env, tmp_path, "Shop", "--base-url", nobody, "--timeout", "2")
    assert sent.returncode == 1
    assert f"cannot reach {nobody}" in sent.stderr
    unknown = send_test(env, tmp_path, "No Such Shop")
    assert unknown.returncode == 1
    assert "No account has this id or name" in unknown.stderr


def test_api_on_postgresql_prints_the_setup_link_and_takes_test_events(tmp_path: Path) -> None:
    with serve_api(tmp_path) as served:
        log = served.log.read_text()
        ((base, token),) = SETUP_LINK.findall(log)
        assert base == served.base_url
        account = served.create_account("Acme Shop")
        # The account exists now: the link no longer sets anything up.
        late = httpx.post(
            f"{base}/v1/setup", json={"token": token, "account_name": "Late"}, timeout=10
        )
        assert late.status_code == 409, late.text
        sent = send_test(
            served.env, tmp_path, "Acme Shop", "--type", "trial", "--email", "max@example.com"
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert re.search(r"^event evt_\w+ \(trial\.started\) accepted$", sent.stdout, re.M)
        lead_id = lead_id_of(sent.stdout)
        headers = {"Authorization": f"Bearer {account['api_key']}"}
        lead = httpx.get(f"{base}/v1/leads/{lead_id}", headers=headers, timeout=10).json()
        assert (lead["customer"]["email"], lead["source_type"]) == ("max@example.com", "trial")
        # An opt-in, and the server's answer as JSON.
        opted = send_test(served.env, tmp_path, account["id"], "--type", "opt_in", "--json")
        assert opted.returncode == 0, opted.stdout + opted.stderr
        answer = json.loads(opted.stdout)
        assert answer["status"] == 200
        assert answer["body"]["type"] == "lead.opt_in" and answer["body"]["duplicate"] is False
