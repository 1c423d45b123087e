"""Logging: plain text, or one JSON object per line (``LEADFLOW_LOG_FORMAT=json``).

Every line carries what the code running it is working for, from context variables: the
request id and account of an HTTP request, the job and the ids of a worker run (``bind``).
Secrets are scrubbed from every line, whoever wrote it: the configured ones by value, API
keys, signing secrets, bearer credentials and URL passwords by their shape.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from leadflow.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# How many of the ids a job touched go into its lines (besides their number).
FIRST_IDS = 3

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("leadflow_log_fields", default=_EMPTY)


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ``fields`` to every line logged from here on in this context (this task, and the
    tasks it starts afterwards)."""
    return _fields.set(MappingProxyType({**_fields.get(), **fields}))


def unbind(token: Token[Mapping[str, Any]]) -> None:
    _fields.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``fields`` on every line logged inside the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current() -> Mapping[str, Any]:
    return _fields.get()


def ids(name: str, values: Sequence[str]) -> dict[str, Any]:
    """A bounded account of the ids a job touched: how many, and the first few."""
    return {f"{name}_count": len(values), name: list(values[:FIRST_IDS])}


class ContextFields(logging.Filter):
    """Copies the bound fields onto each record (the JSON formatter writes them out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # client, method, path with its query, HTTP version, status
            record.client, record.method, record.path, _version, record.status_code = args
        return True


# Secrets by shape: API keys and the dashboard's session and login-link tokens (``lf_``,
# ``lfs_``, ``lfl_``), Standard Webhooks / Stripe secrets, Shopify tokens, credentials after an
# auth scheme, and the password part of a URL.
_SHAPES = (
    r"\blf[sl]?_[A-Za-z0-9_-]{8,}",
    r"\bwhsec_[A-Za-z0-9+/=_-]{4,}",
    r"\bshp(?:at|ss|ca|pa)_[A-Za-z0-9]{4,}",
    r"(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{4,}",
    r"(?<=://)(?P<user>[^\s:/@\"'\\]*:)[^\s@/\"'\\]+(?=@)",
)
MASK = "[redacted]"


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literal = {s for s in secrets if len(s) >= 4}
        literal |= {json.dumps(s)[1:-1] for s in literal}  # as they read inside JSON
        parts = [re.escape(s) for s in sorted(literal, key=len, reverse=True)]
        self.pattern = re.compile("|".join([*parts, *_SHAPES]))

    def __call__(self, text: str) -> str:
        return self.pattern.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    return (match.group("user") or "") + MASK  # a URL's user name stays readable


class Scrubbing(logging.Formatter):
    """Formats with ``inner``, then scrubs the finished line (message, fields, traceback)."""

    def __init__(self, inner: logging.Formatter, scrub: Scrubber) -> None:
        super().__init__()
        self.inner = inner
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))


class SkippedRunsFilter(logging.Filter):
    """APScheduler warns on each tick that finds the job's previous run still going (a long
    dispatch or backfill): expected, and once every few seconds it drowns the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


def quiet_skipped_runs() -> None:
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, SkippedRunsFilter) for f in scheduler.filters):
        scheduler.addFilter(SkippedRunsFilter())


def settings_secrets(settings: Settings) -> list[str]:
    """The secret values the settings hold, to scrub wherever they would show."""
    found = []
    for value in (settings.admin_token, settings.metrics_token):
        if value is not None:
            found.append(value.get_secret_value())
    if settings.secret_key is not None:
        found += settings.secret_key.get_secret_value().replace(",", " ").split()
    urls = [settings.database_url]
    if settings.smtp_url is not None:
        urls.append(settings.smtp_url.get_secret_value())
    for url in urls:
        try:
            password = make_url(url).password
        except (ArgumentError, ValueError):
            continue
        if password:
            found.append(str(password))
    return [s for s in found if s]


class _Installed(logging.StreamHandler):
    """The handler ``configure_logging`` installs (replaced when called again). Without a
    stream of its own it writes to whatever ``sys.stderr`` is when a line is written, as the
    logging module's last-resort handler does, so a replaced or closed stderr (a test runner
    capturing output) never receives a line after it is gone."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        logging.Handler.__init__(self)
        self._own_stream = stream

    @property
    def stream(self) -> IO[str]:
        return self._own_stream if self._own_stream is not None else sys.stderr


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Send every log line (leadflow's, uvicorn's, libraries') to ``stream`` (stderr) in
    ``settings.log_format``, at ``settings.log_level``."""
    handler = _Installed(stream)
    inner: logging.Formatter
    if settings.log_format == "json":
        inner = JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
            json_ensure_ascii=False,
        )
    else:
        inner = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(Scrubbing(inner, Scrubber(settings_secrets(settings))))
    handler.addFilter(ContextFields())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Installed)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # One line per job run every few seconds would drown everything else.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # A line per outgoing request (ILN deliveries, send-test) repeats what leadflow logs itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    quiet_skipped_runs()
    # uvicorn's lines (access log included) through the same handler, when uvicorn is run
    # with ``log_config=None`` (it keeps its own handlers otherwise).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
