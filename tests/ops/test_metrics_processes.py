"""Each process serves its own metrics on ``LEADFLOW_METRICS_PORT`` (bound on 127.0.0.1 by
default): ``leadflow api`` and ``leadflow worker`` as real processes; with
``PROMETHEUS_MULTIPROC_DIR``, through prometheus-client's multi-process collector."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ops.helpers import Scrape
from tests.support.served import LEADFLOW, serve_api
from tests.support.servers import free_port

DEADLINE = 30.0


def _get_metrics(port: int, proc: subprocess.Popen[bytes] | None, log: Path) -> Scrape | None:
    if proc is not None:
        assert proc.poll() is None, f"the process exited:\n{log.read_text()}"
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.TransportError:
        return None
    assert response.status_code == 200, response.text
    return Scrape(response.text)


@contextmanager
def _worker(tmp_path: Path, **env: str) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    port = free_port()
    environ = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database,
        "LEADFLOW_METRICS_PORT": str(port),
        "LEADFLOW_DISPATCH_INTERVAL_SECONDS": "0.2",
        **env,
    }
    environ.pop("LEADFLOW_SMTP_URL", None)
    subprocess.run([*LEADFLOW, "migrate"], env=environ, check=True, capture_output=True)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*LEADFLOW, "worker"], env=environ, stdout=out, stderr=out)
    try:
        yield port, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_dispatch_runs(port: int, proc: subprocess.Popen[bytes], log: Path) -> Scrape:
    deadline = time.monotonic() + DEADLINE
    while True:
        scrape = _get_metrics(port, proc, log)
        runs = "leadflow_job_duration_seconds_count"
        if scrape is not None and scrape.value(runs, job="dispatch") >= 2:
            return scrape
        assert time.monotonic() < deadline, f"no dispatch runs counted:\n{log.read_text()}"
        time.sleep(0.1)


def test_worker_serves_its_metrics(tmp_path):
    with _worker(tmp_path) as (port, proc, log):
        scrape = _wait_for_dispatch_runs(port, proc, log)
        assert scrape.value("leadflow_db_pool_capacity") >= 1
        assert scrape.value("leadflow_job_failures_total", job="dispatch") == 0
        assert "leadflow_claim_batch_size_count" in scrape.names()


def test_worker_under_the_multiprocess_collector(tmp_path):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    with _worker(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(shared)) as (port, proc, log):
        scrape = _wait_for_dispatch_runs(port, proc, log)
        assert scrape.value("leadflow_db_pool_capacity") >= 1
    # The values were kept in the shared directory, where any process of the server reads them.
    assert any(shared.glob("*.db")), list(shared.iterdir())


def test_api_serves_metrics_on_their_own_port(tmp_path):
    port = free_port()
    with serve_api(tmp_path, metrics_port=str(port)) as served:
        assert httpx.get(f"{served.base_url}/healthz", timeout=5).status_code == 200
        # The public port has no /metrics without a token.
        assert httpx.get(f"{served.base_url}/metrics", timeout=5).status_code == 404
        scrape = _get_metrics(port, None, served.log)
        assert scrape is not None
        count = "leadflow_http_request_duration_seconds_count"
        assert scrape.value(count, method="GET", route="/healthz", status="2xx") == 1
        assert scrape.value(count, method="GET", route="unmatched", status="4xx") == 0
        assert scrape.value(count, method="GET", route="/metrics", status="4xx") == 1


@pytest.fixture(autouse=True)
def _no_inherited_multiproc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
