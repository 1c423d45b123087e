"""Secrets at rest: envelope encryption of the secrets leadflow must keep readable.

Webhook secrets, ILN endpoint secrets and platform secrets are needed in clear to compute an
HMAC, so unlike API keys they cannot be hashed. They are stored encrypted with AES-256-GCM under
the envelope key ``LEADFLOW_SECRET_KEY``:

    lfenc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>

* AES-GCM rather than Fernet: it is authenticated encryption with associated data, and the
  associated data is the column (``accounts.webhook_secret``, …), so a value copied into another
  column does not decrypt; the values are shorter (no timestamp, no separate HMAC), and the key
  is 256 bits. A random 96-bit nonce per value is safe far beyond the number of secrets a
  deployment ever writes.
* The key id (the first 8 hex digits of the key's SHA-256) names the key a value was encrypted
  with, so decryption picks the key directly instead of trying each one, and a value under a
  key the process does not hold fails with a message that names it.
* ``LEADFLOW_SECRET_KEY`` holds one key or several, separated by commas: the first encrypts,
  every one decrypts. Rotating the key = put the new key first, keep the old ones after it,
  run ``leadflow secret-key rotate`` (re-encrypts every stored value under the first key, in
  batches), then drop the old keys.
* Values stored before encryption existed (no ``lfenc:`` prefix) still read as they are
  (plaintext legacy rows); ``leadflow secret-key rotate`` encrypts them too. Every write
  encrypts.

The process holds one keyring (:func:`use_keyring`), installed by the composition roots from
the settings (:func:`load_keyring`): the column type :class:`EncryptedText` encrypts on write
and decrypts on read, so services handle secrets in clear and the database never sees them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import Text, select, tuple_, type_coerce, update
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("leadflow.secrets")

PREFIX = "lfenc:v1:"
KEY_FILE_NAME = "leadflow.key"
_NONCE_BYTES = 12


class SecretKeyError(RuntimeError):
    """The envelope key is missing, malformed, or not the one a stored value was encrypted
    with. A configuration fault: the message says what to fix."""


def generate_key() -> str:
    """A new envelope key: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _parse_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip().encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SecretKeyError(
            "LEADFLOW_SECRET_KEY must be 32 bytes in base64 (URL-safe or standard) "
            "(make one with `leadflow secret-key generate`)"
        )
    return raw


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """Envelope keys, the first one current. Encrypts under the current key; decrypts with
    whichever key a value names."""

    keys: tuple[bytes, ...]
    current_id: str = field(init=False, compare=False)  # the key id new values carry
    _current_prefix: str = field(init=False, repr=False, compare=False)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretKeyError("the keyring holds no key")
        ciphers = {key_id(k): AESGCM(k) for k in reversed(self.keys)}
        object.__setattr__(self, "_ciphers", ciphers)
        object.__setattr__(self, "current_id", key_id(self.keys[0]))
        object.__setattr__(self, "_current_prefix", f"{PREFIX}{self.current_id}:")

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        """``"key1,key2"`` (commas, spaces or new lines between keys); the first is current."""
        parts = [p for p in text.replace(",", " ").split() if p]
        if not parts:
            raise SecretKeyError("LEADFLOW_SECRET_KEY is empty")
        keys: list[bytes] = []
        for part in parts:
            key = _parse_key(part)
            if key not in keys:
                keys.append(key)
        return cls(tuple(keys))

    @property
    def ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = self._ciphers[self.current_id]
        sealed = cipher.encrypt(nonce, plaintext.encode(), context.encode())
        payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{self._current_prefix}{payload}"

    def decrypt(self, stored: str, context: str) -> str:
        """The clear text of a stored value (a legacy plaintext value as it is)."""
        if not is_encrypted(stored):
            return stored
        kid, _, payload = stored.removeprefix(PREFIX).partition(":")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretKeyError(
                f"a stored secret ({context}) is encrypted with key {kid}, which "
                f"LEADFLOW_SECRET_KEY does not hold (it holds {', '.join(self.ids)}); "
                "keep the old key after the new one until `leadflow secret-key rotate` has run"
            )
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            clear = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SecretKeyError(
                f"a stored secret ({context}) under key {kid} does not decrypt: "
                "the value is damaged or was written for another column"
            ) from exc
        return clear.decode()

    def is_current(self, stored: str) -> bool:
        return stored.startswith(self._current_prefix)


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


# The process's keyring, installed by the composition roots (app, worker, CLI).
_keyring: Keyring | None = None


def use_keyring(keyring: Keyring | None) -> Keyring | None:
    """Install ``keyring`` for this process; returns the one it replaces."""
    global _keyring
    previous, _keyring = _keyring, keyring
    return previous


def current_keyring() -> Keyring:
    """The process's keyring. A process that installed none (a script using the services
    directly) gets the one its environment describes, as the composition roots would."""
    if _keyring is None:
        use_keyring(load_keyring(_EnvironmentSettings.read()))
        log.info("envelope key loaded from the environment")
    assert _keyring is not None
    return _keyring


class KeySettings(Protocol):
    @property
    def secret_key(self) -> SecretStr | None: ...
    @property
    def database_url(self) -> str: ...
    @property
    def environment(self) -> str: ...


@dataclass(frozen=True)
class _EnvironmentSettings:
    """The variables of ``leadflow.config.Settings`` that choose the keyring (models, which
    use this module, must not import the settings)."""

    secret_key: SecretStr | None
    database_url: str
    environment: str

    @classmethod
    def read(cls) -> _EnvironmentSettings:
        key = os.environ.get("LEADFLOW_SECRET_KEY")
        return cls(
            secret_key=SecretStr(key) if key else None,
            database_url=os.environ.get(
                "LEADFLOW_DATABASE_URL", "sqlite+aiosqlite:///./leadflow.db"
            ),
            environment=os.environ.get("LEADFLOW_ENVIRONMENT", "development"),
        )


def data_directory(database_url: str) -> Path | None:
    """Where the embedded default keeps its files: beside the SQLite database file (``/data``
    in the Docker image). ``None`` for an in-memory database, whose data dies with the
    process; the working directory for other databases outside production."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return Path.cwd()
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser().resolve().parent


def load_keyring(settings: KeySettings) -> Keyring:
    """The keyring ``settings`` describe: ``LEADFLOW_SECRET_KEY`` when set (required in
    production); else the key file ``leadflow.key`` in the data directory, created (mode 0600)
    on first start; a key that lives as long as the process for an in-memory database."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        return Keyring.from_text(settings.secret_key.get_secret_value())
    if settings.environment == "production":
        raise SecretKeyError("LEADFLOW_SECRET_KEY is required in production")
    directory = data_directory(settings.database_url)
    if directory is None:
        return Keyring.from_text(generate_key())
    return Keyring.from_text(read_or_create_key_file(directory / KEY_FILE_NAME))


def read_or_create_key_file(path: Path) -> str:
    """The keys in ``path``, one per line; a new key in a new file (mode 0600) if none exists.
    Concurrent first starts agree on one key: the file appears whole, through a hard link."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_key() + "\n")
            try:
                os.link(temporary, path)
                log.warning("generated the envelope key %s (mode 0600): back it up", path)
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); chmod 600 it", path, mode)
    return path.read_text()


class EncryptedText(TypeDecorator[str]):
    """A text column whose values are stored encrypted with the process keyring; ``context``
    (``table.column``) is the associated data that binds each value to its column."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current_keyring().encrypt(value, self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current_keyring().decrypt(value, self.context)


@dataclass
class Reencrypted:
    """One batch of :func:`reencrypt_batch`."""

    scanned: int = 0
    rewritten: int = 0
    last_key: tuple[Any, ...] | None = None


async def reencrypt_batch(
    session: AsyncSession,
    model: Any,
    keys: Sequence[InstrumentedAttribute[Any]],
    columns: Sequence[InstrumentedAttribute[Any]],
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Reencrypted:
    """Rewrite, under the current key, the ``columns`` of up to ``limit`` rows of ``model``
    (in the order of its primary ``keys``, after the row ``after``) that are in clear or under
    an older key. A row changed meanwhile (a rotation) is left alone: its new value was written
    under the current key."""
    keyring = current_keyring()
    raw = [type_coerce(column, Text) for column in columns]
    stmt = select(*keys, *raw).order_by(*keys).limit(limit)
    if after is not None:
        stmt = stmt.where(tuple_(*keys) > tuple_(*after))
    rows = (await session.execute(stmt)).all()
    result = Reencrypted(scanned=len(rows), last_key=tuple(rows[-1][: len(keys)]) if rows else None)
    for row in rows:
        row_key, stored = row[: len(keys)], row[len(keys) :]
        changes: dict[str, str] = {}
        guards = [key == value for key, value in zip(keys, row_key, strict=True)]
        for column, raw_column, value in zip(columns, raw, stored, strict=True):
            if value is None or keyring.is_current(value):
                continue
            changes[column.key] = keyring.decrypt(value, column.type.context)
            guards.append(raw_column == value)
        if changes:
            await session.execute(update(model).where(*guards).values(**changes))
            result.rewritten += 1
    await session.flush()
    return result
