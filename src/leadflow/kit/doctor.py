"""``leadflow doctor``: what an operator checks before (and after) starting leadflow.

Each check gives ``ok``, ``warn`` or ``fail`` with one line of detail. Settings that are unsafe
in production fail with ``LEADFLOW_ENVIRONMENT=production`` and only warn elsewhere, so a
developer sees them too without being stopped. No detail ever contains a secret: URLs are
shown without their passwords, and every configured secret is scrubbed from error messages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from leadflow.config import Settings
from leadflow.kit.secrets import KEY_FILE_NAME, SecretKeyError, data_directory, load_keyring

PRODUCTION = "production"
ENVIRONMENTS = ("development", PRODUCTION)
MIN_ADMIN_TOKEN = 24  # the length config.py requires in production


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status.value:<4}  {self.name}  {self.detail}"

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "check": self.name, "detail": self.detail}


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None in memory)."""
    database = make_url(url).database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser()


def _loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Scrubber:
    """Removes every configured secret from a message."""

    def __init__(self, settings: Settings) -> None:
        values = [make_url(settings.database_url).password]
        for secret in (settings.smtp_url, settings.admin_token, settings.secret_key):
            if secret is not None:
                values.append(secret.get_secret_value())
        if settings.smtp_url is not None:
            values.append(urlsplit(settings.smtp_url.get_secret_value()).password)
        self.values = sorted({str(v) for v in values if v}, key=len, reverse=True)

    def __call__(self, message: str) -> str:
        for value in self.values:
            message = message.replace(value, "***")
        return " ".join(message.split())[:300]


def _error(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def check_database(settings: Settings, wait: float) -> list[Check]:
    """Reachable, and its schema at the head of the migration scripts."""
    from leadflow.kit.db import create_engine
    from leadflow.kit.migrate import current_revision, head_revision

    url = settings.database_url
    shown = redacted(url)
    scrub = _Scrubber(settings)
    path = _sqlite_file(url) if _is_sqlite(url) else None
    if path is not None and not path.exists():
        # Connecting would create it; `leadflow serve` creates and migrates it at start.
        return [
            Check(Status.WARN, "database", f"{shown}: no database file yet"),
            Check(
                Status.WARN,
                "migrations",
                "not applied yet (`leadflow serve` or `leadflow migrate` applies them)",
            ),
        ]
    engine = create_engine(url, pool_size=1)
    try:
        started = time.monotonic()
        try:
            async with asyncio.timeout(wait):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                current = await asyncio.wait_for(current_revision(engine), wait)
        except Exception as exc:  # any failure to reach it is the finding
            return [
                Check(Status.FAIL, "database", f"{shown}: unreachable ({scrub(_error(exc))})"),
                Check(Status.FAIL, "migrations", "unknown: the database is unreachable"),
            ]
        took = (time.monotonic() - started) * 1000
        checks = [Check(Status.OK, "database", f"{shown}: reachable in {took:.0f} ms")]
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        checks.append(Check(Status.OK, "migrations", f"at head ({head})"))
        return checks
    # An embedded SQLite database is migrated by `leadflow serve` when it starts.
    behind = Status.WARN if _is_sqlite(url) else Status.FAIL
    if current is None:
        detail = f"not migrated (head is {head}): run `leadflow migrate`"
    else:
        from alembic.script import ScriptDirectory

        from leadflow.kit.migrate import alembic_config

        scripts = ScriptDirectory.from_config(alembic_config())
        try:
            known = scripts.get_revision(current) is not None
        except Exception:  # alembic raises several kinds for an unknown id
            known = False
        if not known:
            behind = Status.FAIL
            detail = (
                f"at {current}, which these migration scripts do not know "
                f"(head is {head}): is this leadflow older than the database?"
            )
        else:
            detail = f"at {current}, head is {head}: run `leadflow migrate`"
    checks.append(Check(behind, "migrations", detail))
    return checks


async def check_smtp(settings: Settings, wait: float) -> Check:
    """Connect, EHLO (STARTTLS and login as the URL says, as sending does), QUIT."""
    import aiosmtplib

    from leadflow.kit.mail import SmtpOptions

    if settings.smtp_url is None or not settings.smtp_url.get_secret_value():
        status = Status.FAIL if settings.environment == PRODUCTION else Status.WARN
        return Check(
            status,
            "smtp",
            f"LEADFLOW_SMTP_URL not set: follow-ups are written to {settings.outbox_dir}/ "
            "instead of being sent",
        )
    scrub = _Scrubber(settings)
    try:
        options = SmtpOptions(settings.smtp_url.get_secret_value())
    except ValueError as exc:
        return Check(Status.FAIL, "smtp", scrub(str(exc)))
    scheme = "smtps" if options.use_tls else "smtp"
    shown = f"{scheme}://{options.hostname}:{options.port}"
    client = aiosmtplib.SMTP(
        hostname=options.hostname,
        port=options.port,
        username=options.username,
        password=options.password,
        use_tls=options.use_tls,
        start_tls=options.start_tls,
        validate_certs=options.validate_certs,
        timeout=wait,
    )
    try:
        async with asyncio.timeout(wait * 2):
            await client.connect()
            response = await client.ehlo()
            encrypted = options.use_tls or client.get_transport_info("sslcontext") is not None
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        client.close()
        return Check(Status.FAIL, "smtp", f"{shown}: {scrub(_error(exc))}")
    greeting = response.message.splitlines()[0] if response.message else ""
    details = [f"{shown}: EHLO answered {response.code} {greeting}".rstrip()]
    if options.username:
        details.append("logged in")
    status = Status.OK
    if not encrypted and not _loopback(options.hostname):
        status = Status.FAIL if settings.environment == PRODUCTION else Status.WARN
        details.append("without TLS: mail and the SMTP password cross the network in clear")
    return Check(status, "smtp", "; ".join(details))


def check_secret_key(settings: Settings) -> Check:
    """The envelope key of the secrets at rest: set, or the key file of the data directory.
    A missing key file is reported, not created."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        try:
            keyring = load_keyring(settings)
        except SecretKeyError as exc:
            return Check(Status.FAIL, "secret key", str(exc))
        others = len(keyring.ids) - 1
        extra = f" (+{others} older, for decrypting until `leadflow secret-key rotate`)"
        return Check(
            Status.OK,
            "secret key",
            f"LEADFLOW_SECRET_KEY loaded: current key {keyring.current_id}"
            + (extra if others else ""),
        )
    if settings.environment == PRODUCTION:
        return Check(Status.FAIL, "secret key", "LEADFLOW_SECRET_KEY is required in production")
    directory = data_directory(settings.database_url)
    if directory is None:
        return Check(
            Status.WARN,
            "secret key",
            "LEADFLOW_SECRET_KEY not set: an in-memory database gets a key that dies with it",
        )
    path = directory / KEY_FILE_NAME
    if not path.exists():
        return Check(
            Status.WARN,
            "secret key",
            f"LEADFLOW_SECRET_KEY not set and no {path}: one is generated at first start "
            "(back it up)",
        )
    try:
        keyring = load_keyring(settings)
    except (SecretKeyError, OSError) as exc:
        return Check(Status.FAIL, "secret key", f"{path}: {exc}")
    return Check(
        Status.WARN,
        "secret key",
        f"LEADFLOW_SECRET_KEY not set: using the key file {path} (key {keyring.current_id}); "
        "set LEADFLOW_SECRET_KEY in production",
    )


def check_settings(settings: Settings) -> list[Check]:
    """Settings that are fine on a developer's machine and unsafe in production."""
    production = settings.environment == PRODUCTION
    unsafe = Status.FAIL if production else Status.WARN
    checks = []
    if settings.environment not in ENVIRONMENTS:
        checks.append(
            Check(
                Status.WARN,
                "environment",
                f"{settings.environment!r} is treated as development; "
                "production checks apply only to LEADFLOW_ENVIRONMENT=production",
            )
        )
    else:
        checks.append(Check(Status.OK, "environment", settings.environment))
    if _is_sqlite(settings.database_url):
        checks.append(
            Check(
                Status.FAIL if production else Status.OK,
                "database backend",
                "SQLite: one process and one machine; production runs on PostgreSQL"
                if production
                else "SQLite (embedded: one process)",
            )
        )
    else:
        checks.append(Check(Status.OK, "database backend", "PostgreSQL"))
    base = urlsplit(settings.base_url)
    if base.scheme == "https":
        checks.append(Check(Status.OK, "base url", settings.base_url))
    else:
        if not production and _loopback(base.hostname):
            checks.append(Check(Status.OK, "base url", f"{settings.base_url} (this machine)"))
        else:
            checks.append(
                Check(
                    unsafe,
                    "base url",
                    f"{settings.base_url}: links in follow-ups (unsubscribe, recovery) "
                    "are not https",
                )
            )
    checks.append(
        Check(
            unsafe,
            "iln private addresses",
            "LEADFLOW_ILN_ALLOW_PRIVATE=true: notifications may be sent to internal addresses",
        )
        if settings.iln_allow_private
        else Check(Status.OK, "iln private addresses", "refused")
    )
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not token:
        checks.append(
            Check(
                Status.WARN,
                "admin token",
                "not set: the admin API is off (`leadflow accounts create` still works)",
            )
        )
    elif len(token) < MIN_ADMIN_TOKEN:
        checks.append(
            Check(
                unsafe,
                "admin token",
                f"{len(token)} characters; at least {MIN_ADMIN_TOKEN} in production",
            )
        )
    else:
        checks.append(Check(Status.OK, "admin token", f"set ({len(token)} characters)"))
    if settings.access_log and production:
        # Not a failure: useful behind no proxy, but the proxy logs requests already, and
        # unsubscribe and click links carry their signed tokens in the path.
        checks.append(
            Check(
                Status.WARN,
                "access log",
                "on: one line per request, link tokens included; "
                "LEADFLOW_ACCESS_LOG=false when the proxy logs requests",
            )
        )
    else:
        checks.append(Check(Status.OK, "access log", "on" if settings.access_log else "off"))
    return checks


def load_settings() -> Settings | Check:
    """The settings of the environment, or the check that says why they do not load
    (the messages only: a validation error's input would show the secrets)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        return Check(Status.FAIL, "settings", problems)


async def run_checks(settings: Settings, wait: float = 5.0) -> list[Check]:
    database, smtp = await asyncio.gather(
        check_database(settings, wait), check_smtp(settings, wait)
    )
    return [*database, smtp, check_secret_key(settings), *check_settings(settings)]
