"""TypeScript types generated from the committed ``openapi/openapi.json`` by
openapi-typescript, a small client (``typescript/client.ts``, on openapi-fetch) compiled
against them by ``tsc`` in strict mode, and that client run by node against the app.

The toolchain is pinned in ``typescript/package-lock.json`` and installed by ``npm ci`` the
first time (``node_modules`` is not committed). Without node and npm these tests are skipped,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import ADMIN_TOKEN

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
TOOLCHAIN = Path(__file__).resolve().parent / "typescript"
SOURCES = ("client.ts", "tsconfig.json", "package.json")
# openapi-typescript's own default turns every property with a default into a required one,
# request bodies included; the server fills those defaults in, so a client may leave them out.
GENERATE_OPTIONS = ("--default-non-nullable", "false")


def node_modules() -> Path:
    """The pinned toolchain, installed with ``npm ci`` when missing or older than its lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = "node and npm are needed for the TypeScript contract tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (required under CI=true)")
        pytest.skip(message)
    installed = TOOLCHAIN / "node_modules" / ".package-lock.json"
    lock = TOOLCHAIN / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        proc = subprocess.run(
            [
                "npm",
                "ci",
                "--prefix",
                str(TOOLCHAIN),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}{proc.stderr}"
    return TOOLCHAIN / "node_modules"


@dataclass(frozen=True)
class Step:
    returncode: int
    output: str


@dataclass(frozen=True)
class Build:
    directory: Path
    generate: Step
    compile: Step | None  # None when no types were generated


def run(command: list[str], cwd: Path) -> Step:
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    return Step(proc.returncode, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``client.ts`` and the types of the committed document, in a directory of their own
    (the toolchain linked in): generated, then compiled to JavaScript."""
    modules = node_modules()
    directory = tmp_path_factory.mktemp("typescript-client")
    for name in SOURCES:
        shutil.copy(TOOLCHAIN / name, directory / name)
    (directory / "node_modules").symlink_to(modules, target_is_directory=True)
    (directory / "generated").mkdir()
    generate = run(
        [
            "node",
            str(modules / "openapi-typescript" / "bin" / "cli.js"),
            str(OPENAPI),
            *GENERATE_OPTIONS,
            "--output",
            "generated/schema.ts",
        ],
        directory,
    )
    if generate.returncode != 0:
        return Build(directory, generate, None)
    # Strict, as tsconfig.json says; errors emit nothing (noEmitOnError).
    compiled = run(
        ["node", str(modules / "typescript" / "bin" / "tsc"), "--project", "tsconfig.json"],
        directory,
    )
    return Build(directory, generate, compiled)


def test_types_generate(build: Build) -> None:
    assert build.generate.returncode == 0, (
        f"openapi-typescript refused openapi/openapi.json:\n{build.generate.output}"
    )
    complaints = [line for line in build.generate.output.splitlines() if "⚠" in line or "✘" in line]
    assert not complaints, "openapi-typescript warns about openapi/openapi.json:\n" + "\n".join(
        complaints
    )
    schema = (build.directory / "generated" / "schema.ts").read_text(encoding="utf-8")
    assert "export interface paths" in schema and "export interface webhooks" in schema


def test_client_compiles_strictly(build: Build) -> None:
    assert build.compile is not None, "no types were generated (see test_types_generate)"
    assert build.compile.returncode == 0, (
        f"tsc --strict rejects client.ts against the generated types:\n{build.compile.output}"
    )


async def test_compiled_client_calls_the_api(build: Build, live_url: str) -> None:
    script = build.directory / "build" / "client.js"
    assert script.is_file(), "client.ts was not compiled (see test_client_compiles_strictly)"
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LEADFLOW_URL": live_url, "LEADFLOW_ADMIN_TOKEN": ADMIN_TOKEN},
        cwd=build.directory,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, f"client.js failed:\n{stderr.decode()}{stdout.decode()}"
    summary = json.loads(stdout)
    campaign = summary["campaign"]
    assert campaign["id"].startswith("cmp_") and campaign["status"] == "active"
    assert dt.datetime.fromisoformat(campaign["created_at"]).utcoffset() is not None
    assert summary["listed"] == [campaign["id"]] and summary["next_cursor"] is None
    assert summary["shown"] == {"id": campaign["id"], "variants": ["A", "B"]}
    assert summary["ab_test"] == {
        "campaign_id": campaign["id"],
        "state": "running",
        "variants": ["A:0", "B:0"],
    }
    assert summary["leads"] == [] and summary["followups_sent"] == 0
    assert summary["missing"] == {"status": 404, "code": "not_found"}
