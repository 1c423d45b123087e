"""``leadflow doctor`` as an operator runs it: a real process against real PostgreSQL and
SQLite databases and a real SMTP server, its lines and its exit code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from leadflow.kit.db import Database
from leadflow.kit.migrate import alembic_config, head_revision, upgrade
from tests.cli.helpers import cli_env, leadflow
from tests.fixtures.mail import SmtpSink
from tests.support.api import TEST_SECRET_KEY
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url
from tests.support.servers import free_port

# Trust authentication ignores it, so it can stand for a real password in the URL.
DB_PASSWORD = "db-pass-7c1f0e"
ADMIN = "an-admin-token-long-enough-for-production"
CHECKS = {
    "database",
    "migrations",
    "smtp",
    "secret key",
    "environment",
    "database backend",
    "base url",
    "iln private addresses",
    "admin token",
    "access log",
}


def with_password(url: str) -> str:
    return url.replace("://postgres@", f"://postgres:{DB_PASSWORD}@", 1)


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """An empty PostgreSQL database (not migrated); its URL."""
    await pg_or_skip()
    name = await create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


async def migrated(url: str, revision: str = "head") -> str:
    db = Database(url)
    try:
        await upgrade(db.engine, revision)
    finally:
        await db.dispose()
    return url


def assert_no_secret(output: str, *secrets: str) -> None:
    for secret in (DB_PASSWORD, ADMIN, TEST_SECRET_KEY, *secrets):
        assert secret not in output, f"{secret!r} printed:\n{output}"


async def test_a_good_production_setup_is_ok_throughout(
    pg_database: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    url = with_password(await migrated(pg_database))
    env = cli_env(
        tmp_path,
        environment="production",
        database_url=url,
        smtp_url=smtp_sink.url,
        admin_token=ADMIN,
        base_url="https://leads.example.com",
        access_log="false",
    )
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 0, ran.output
    assert set(checks) == CHECKS
    assert {name for name, (status, _) in checks.items() if status != "ok"} == set()
    assert checks["database"][1].startswith("postgresql+asyncpg://postgres:***@127.0.0.1:5432/")
    assert checks["migrations"][1] == f"at head ({head_revision()})"
    # Only a real EHLO exchange produces its answer.
    assert checks["smtp"][1].startswith(f"smtp://127.0.0.1:{smtp_sink.port}: EHLO answered 250")
    assert_no_secret(ran.output)


async def test_json_output_says_the_same(pg_database: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, database_url=await migrated(pg_database))
    ran = await leadflow("doctor", "--json", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    document = json.loads(ran.stdout)
    assert document["ok"] is True
    by_name = {c["check"]: c for c in document["checks"]}
    assert set(by_name) == CHECKS
    assert by_name["migrations"]["status"] == "ok"
    assert by_name["smtp"]["status"] == "warn"  # no SMTP URL in development


async def test_an_unreachable_database_fails(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres:{DB_PASSWORD}@127.0.0.1:{free_port()}/leadflow"
    env = cli_env(tmp_path, database_url=url)
    ran = await leadflow("doctor", "--timeout", "3", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 1, ran.output
    assert checks["database"][0] == "fail"
    assert "unreachable" in checks["database"][1]
    assert checks["migrations"][0] == "fail"
    assert_no_secret(ran.output)


async def test_a_database_behind_the_scripts_fails_until_migrated(
    pg_database: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, database_url=pg_database)
    head = head_revision()

    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    assert ran.code == 1, ran.output
    assert ran.checks()["database"][0] == "ok"
    assert ran.checks()["migrations"] == (
        "fail",
        f"not migrated (head is {head}): run `leadflow migrate`",
    )

    script = ScriptDirectory.from_config(alembic_config()).get_revision(head)
    assert script is not None and isinstance(script.down_revision, str)
    await migrated(pg_database, script.down_revision)
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    assert ran.code == 1, ran.output
    assert ran.checks()["migrations"] == (
        "fail",
        f"at {script.down_revision}, head is {head}: run `leadflow migrate`",
    )

    migrate = await leadflow("migrate", env=env, cwd=tmp_path)
    assert migrate.code == 0, migrate.output
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    assert ran.checks()["migrations"] == ("ok", f"at head ({head})")


async def test_an_embedded_database_not_created_yet_is_left_alone(tmp_path: Path) -> None:
    """`leadflow serve` creates and migrates it, and generates the key file: doctor says so
    and creates neither."""
    env = cli_env(
        tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/leadflow.db", secret_key=None
    )
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 0, ran.output
    assert checks["database"] == (
        "warn",
        f"sqlite+aiosqlite:///{tmp_path}/leadflow.db: no database file yet",
    )
    assert checks["migrations"][0] == "warn"
    assert checks["secret key"][0] == "warn"
    assert f"no {tmp_path}/leadflow.key" in checks["secret key"][1]
    assert not (tmp_path / "leadflow.db").exists()
    assert not (tmp_path / "leadflow.key").exists()


async def test_a_migrated_embedded_database_in_development(tmp_path: Path) -> None:
    url = await migrated(f"sqlite+aiosqlite:///{tmp_path}/leadflow.db")
    env = cli_env(tmp_path, database_url=url)
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 0, ran.output
    assert checks["database"][0] == "ok"
    assert checks["migrations"] == ("ok", f"at head ({head_revision()})")
    assert checks["database backend"] == ("ok", "SQLite (embedded: one process)")
    assert checks["smtp"] == (
        "warn",
        "LEADFLOW_SMTP_URL not set: follow-ups are written to outbox/ instead of being sent",
    )
    assert checks["secret key"][0] == "ok"


UNSAFE = {
    "base_url": "http://leads.example.com",
    "iln_allow_private": "true",
    "admin_token": "short-token",
}


async def test_settings_unsafe_in_production_warn_in_development(tmp_path: Path) -> None:
    url = await migrated(f"sqlite+aiosqlite:///{tmp_path}/leadflow.db")
    env = cli_env(tmp_path, database_url=url, **UNSAFE)
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 0, ran.output
    assert checks["base url"][0] == "warn"
    assert "not https" in checks["base url"][1]
    assert checks["iln private addresses"][0] == "warn"
    assert checks["admin token"] == ("warn", "11 characters; at least 24 in production")
    assert_no_secret(ran.output, "short-token")


async def test_settings_unsafe_in_production_fail_there(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    url = await migrated(f"sqlite+aiosqlite:///{tmp_path}/leadflow.db")
    env = cli_env(
        tmp_path,
        environment="production",
        database_url=url,
        smtp_url=smtp_sink.url,
        **{**UNSAFE, "admin_token": ADMIN},
    )
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 1, ran.output
    failed = {name for name, (status, _) in checks.items() if status == "fail"}
    assert failed == {"database backend", "base url", "iln private addresses"}
    assert checks["access log"][0] == "warn"  # on by default: a warning, not a failure
    assert_no_secret(ran.output)


async def test_settings_production_refuses_fail_without_showing_them(tmp_path: Path) -> None:
    env = cli_env(tmp_path, environment="production", admin_token="short-token")
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    assert ran.code == 1, ran.output
    status, detail = ran.checks()["settings"]
    assert status == "fail"
    assert "LEADFLOW_ADMIN_TOKEN must be at least 24 characters in production" in detail
    assert_no_secret(ran.output, "short-token")


async def test_production_needs_smtp_and_a_secret_key(tmp_path: Path) -> None:
    env = cli_env(tmp_path, environment="production", secret_key="not-a-key")
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    checks = ran.checks()
    assert ran.code == 1, ran.output
    assert checks["smtp"][0] == "fail"
    assert checks["secret key"][0] == "fail"
    assert "32 bytes" in checks["secret key"][1]
    assert_no_secret(ran.output, "not-a-key")


async def test_an_unreachable_smtp_server_fails(tmp_path: Path) -> None:
    url = await migrated(f"sqlite+aiosqlite:///{tmp_path}/leadflow.db")
    port = free_port()
    env = cli_env(
        tmp_path,
        database_url=url,
        smtp_url=f"smtp://mailer:smtp-pass-93ab@127.0.0.1:{port}?starttls=false",
    )
    ran = await leadflow("doctor", "--timeout", "3", env=env, cwd=tmp_path)
    status, detail = ran.checks()["smtp"]
    assert ran.code == 1, ran.output
    assert status == "fail"
    assert detail.startswith(f"smtp://127.0.0.1:{port}: ")
    assert_no_secret(ran.output, "smtp-pass-93ab")


async def test_smtp_credentials_a_server_refuses_fail(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    """The sink offers no AUTH: a login the sender would attempt fails here first."""
    url = await migrated(f"sqlite+aiosqlite:///{tmp_path}/leadflow.db")
    env = cli_env(
        tmp_path,
        database_url=url,
        smtp_url=f"smtp://mailer:smtp-pass-93ab@127.0.0.1:{smtp_sink.port}?starttls=false",
    )
    ran = await leadflow("doctor", env=env, cwd=tmp_path)
    status, _ = ran.checks()["smtp"]
    assert ran.code == 1, ran.output
    assert status == "fail"
    assert_no_secret(ran.output, "smtp-pass-93ab")
