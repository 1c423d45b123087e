"""``leadflow bounces`` as a process: it listens for SMTP on the given port, accepts what it
is sent, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

from tests.support.served import LEADFLOW, _migrate, run_async
from tests.support.servers import free_port


def _connect(proc: subprocess.Popen[bytes], port: int, log: Path) -> smtplib.SMTP:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=5)
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def test_the_listener_runs_accepts_mail_and_stops(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}"
    run_async(_migrate(url))
    port = free_port()
    log = tmp_path / "bounces.log"
    env = {**os.environ, "LEADFLOW_DATABASE_URL": url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*LEADFLOW, "bounces", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        smtp = _connect(proc, port, log)
        reply = EmailMessage()
        reply["From"] = "jane@example.com"
        reply["To"] = "bounces@leadflow.example.com"
        reply["Subject"] = "Out of office"
        reply.set_content("Away until Monday.")
        refused = smtp.sendmail("<>", ["bounces@leadflow.example.com"], reply.as_bytes())
        assert refused == {}
        smtp.quit()
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()
