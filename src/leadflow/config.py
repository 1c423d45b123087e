"""Runtime settings, read from ``LEADFLOW_*`` environment variables."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./leadflow.db"


class Settings(BaseSettings):
    """Every setting has a safe default so ``leadflow serve`` runs on a fresh machine."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    admin_token: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=1000, ge=1)
    attribution_days: int = Field(default=7, ge=1)
    dispatch_interval_seconds: float = Field(default=5.0, gt=0)
    dispatch_batch_size: int = Field(default=100, ge=1, le=10_000)
    dispatch_lease_seconds: int = Field(default=120, ge=5)
    smtp_url: SecretStr | None = None
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_max_attempts: int = Field(default=12, ge=1)
    smtp_retry_base_seconds: float = Field(default=30.0, gt=0)
    smtp_retry_max_seconds: float = Field(default=900.0, gt=0)
    outbox_dir: Path = Path("outbox")
    mail_from: str = "leadflow@localhost"
    iln_allow_private: bool = False
    iln_retry_schedule: str = "5s,5m,30m,2h,5h,10h,14h,20h,24h"
    iln_interval_seconds: float = Field(default=2.0, gt=0)
    iln_batch_size: int = Field(default=100, ge=1)
    iln_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    iln_read_timeout_seconds: float = Field(default=10.0, gt=0)
    iln_lease_seconds: int = Field(default=300, ge=10)
    iln_secret_rotation_hours: int = Field(default=24, ge=0)
    # After an account's webhook secret is rotated, how long the old one still verifies.
    webhook_secret_rotation_hours: int = Field(default=24, ge=0)
    # How long webhook intake keeps an account it read (0: read it for every request).
    webhook_account_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # The envelope key(s) of the secrets stored encrypted (kit/secrets.py); the first one
    # encrypts. Required in production; elsewhere generated into the data directory.
    secret_key: SecretStr | None = None
    stats_stream_interval_seconds: float = Field(default=2.0, gt=0)
    stats_stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    ab_eval_interval_seconds: float = Field(default=60.0, gt=0)
    # On SIGTERM the worker stops taking work and lets what is in flight finish this long.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    shopify_abandon_after_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    db_pool_size: int = Field(default=10, ge=1)
    # How long a dashboard sign-in lasts (the browser's session cookie), in hours.
    session_hours: float = Field(default=12, gt=0, le=24 * 366)
    # One log line per HTTP request (uvicorn's access log).
    access_log: bool = True
    # Log lines as plain text or one JSON object each (request id, account, job, ids).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Prometheus metrics on a port of their own (prometheus-client's server), bound on
    # ``metrics_host``; both ``leadflow api`` and ``leadflow worker`` serve them there.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # ``/metrics`` on the API's own port answers only with this bearer token (404 when unset).
    metrics_token: SecretStr | None = None
    environment: str = "development"
    # Merchant templates render in separate processes (templates/isolation.py): per part
    # (subject, html, text) at most this long and this much output; a process may allocate
    # this much beyond its own code; this many processes per API or worker process.
    template_render_seconds: float = Field(default=2.0, gt=0, le=60)
    template_output_max_chars: int = Field(default=1024 * 1024, ge=1024)
    template_render_memory_mb: int = Field(default=256, ge=0)
    template_render_processes: int = Field(default=2, ge=1, le=32)
    # Bounces and complaints: an address is suppressed after this many soft bounces within
    # the window (a hard bounce or a complaint suppresses it at once).
    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    soft_bounce_window_days: int = Field(default=7, ge=1, le=365)
    # A bounce that names no follow-up is matched to the newest one sent to its address
    # within this many days.
    bounce_match_days: int = Field(default=30, ge=1, le=365)
    # Opt-in capture forms: sign-ups per minute from one IP address and into one account
    # (token buckets kept in each API process), and how long a double opt-in link stays valid.
    capture_per_ip_per_minute: int = Field(default=10, ge=1, le=100_000)
    capture_per_account_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    capture_confirm_days: int = Field(default=7, ge=1, le=90)

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        token = self.admin_token
        if self.environment == "production" and token and len(token.get_secret_value()) < 24:
            raise ValueError("LEADFLOW_ADMIN_TOKEN must be at least 24 characters in production")
        key = self.secret_key
        if self.environment == "production" and (key is None or not key.get_secret_value()):
            raise ValueError(
                "LEADFLOW_SECRET_KEY is required in production "
                "(make one with `leadflow secret-key generate`)"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("iln_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def session_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.session_hours)

    @property
    def iln_retry_delays(self) -> list[dt.timedelta]:
        return parse_schedule(self.iln_retry_schedule)

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_schedule(text: str) -> list[dt.timedelta]:
    """``"5s,5m,30m,2h"`` -> timedeltas (the waits between delivery attempts)."""
    delays = []
    for part in text.split(","):
        part = part.strip().lower()
        if len(part) < 2 or part[-1] not in _UNITS or not part[:-1].isdigit():
            raise ValueError(f"{part!r} is not a delay like 5s, 5m, 2h or 1d")
        delays.append(dt.timedelta(seconds=int(part[:-1]) * _UNITS[part[-1]]))
    return delays


def find_migrations_dir() -> Path:
    """The Alembic scripts live next to the source tree (editable install, Docker ``/app``)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "migrations",
        Path.cwd() / "migrations",
    ]
    for path in candidates:
        if (path / "env.py").is_file():
            return path
    raise RuntimeError("cannot find leadflow's migrations/ directory; run from the project root")
